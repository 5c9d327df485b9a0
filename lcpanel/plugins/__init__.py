"""Built-in plugins. Each module here is registered through the ``lcpanel`` entry-point
group declared in pyproject.toml, exactly as a third-party plugin would be; nothing in
lcpanel imports these modules directly."""
