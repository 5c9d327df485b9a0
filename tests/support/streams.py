"""A ``stream`` product entry's function for tests: writes ``text`` ``times`` times."""


def repeat(sink, text: str, times: int) -> None:
    for _ in range(times):
        sink.write(text.encode())
