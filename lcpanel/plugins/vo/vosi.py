"""VOSI 1.1: capabilities, availability, tables, and the TAP examples page."""


from __future__ import annotations

import logging

from ...core.vo.obscore import DATA_MODEL as OBSCORE_MODEL
from ...core.vo.tap_schema import table_xml, tableset_xml, tap_model
from ...core.vo.voformats import capabilities_xml as output_formats_xml
from ...errors import NotFound
from .base import VOHandler, VOSettings

log = logging.getLogger(__name__)


class TapCapabilitiesHandler(VOHandler):
    def get(self):
        model = self.vo.engine.model()
        models = [OBSCORE_MODEL] if model.table("ivoa", "obscore") else []
        self.send_body(capabilities_xml(self.base_url() + "/tap", self.vo.settings, models), "text/xml")


class TapAvailabilityHandler(VOHandler):
    def get(self):
        body = ('<?xml version="1.0" encoding="UTF-8"?>\n'
                '<vosi:availability xmlns:vosi="http://www.ivoa.net/xml/VOSIAvailability/v1.0">'
                "<vosi:available>true</vosi:available>"
                "<vosi:note>lcpanel TAP service is accepting queries</vosi:note></vosi:availability>\n")
        self.send_body(body.encode(), "text/xml")


class TapExamplesHandler(VOHandler):
    def get(self):
        from ...core.vo.tap_examples import examples_xhtml

        self.send_body(examples_xhtml(self.vo.engine.model(), self.app.catalogs), "application/xhtml+xml")


class TapTablesHandler(VOHandler):
    def get(self, name=None):
        model = tap_model(self.app.catalogs)
        if name:
            table = model.find(name)
            if table is None:
                raise NotFound(f"no table {name[:80]!r}")
            self.send_body(table_xml(table), "text/xml")
            return
        detail = self.params().get("DETAIL", "max").lower() != "min"
        self.send_body(tableset_xml(model, detail=detail), "text/xml")



# --- capabilities ------------------------------------------------------------------------------

_FEATURES = {
    "ivo://ivoa.net/std/TAPRegExt#features-adqlgeo": ("POINT", "CIRCLE", "CONTAINS", "INTERSECTS", "DISTANCE",
                                                     "COORD1", "COORD2", "COORDSYS"),
    "ivo://ivoa.net/std/TAPRegExt#features-adql-string": ("LOWER", "UPPER", "ILIKE"),
    "ivo://ivoa.net/std/TAPRegExt#features-adql-offset": ("OFFSET",),
    "ivo://ivoa.net/std/TAPRegExt#features-adql-sets": ("UNION", "EXCEPT", "INTERSECT"),
    "ivo://ivoa.net/std/TAPRegExt#features-adql-common-table": ("WITH",),
    "ivo://ivoa.net/std/TAPRegExt#features-adql-type": ("CAST",),
}


def capabilities_xml(tap_url: str, settings: VOSettings, data_models=()) -> bytes:
    """VOSI capabilities with the TAPRegExt description of the TAP service."""
    from xml.sax.saxutils import escape

    url = escape(tap_url)
    features = "".join(
        f'<languageFeatures type="{t}">' + "".join(f"<feature><form>{f}</form></feature>" for f in forms)
        + "</languageFeatures>" for t, forms in _FEATURES.items())

    def vosi(standard: str, path: str) -> str:
        return (f'<capability standardID="{standard}"><interface xsi:type="vs:ParamHTTP">'
                f'<accessURL use="full">{url}/{path}</accessURL></interface></capability>\n')

    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<vosi:capabilities xmlns:vosi="http://www.ivoa.net/xml/VOSICapabilities/v1.0" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
        'xmlns:vr="http://www.ivoa.net/xml/VOResource/v1.0" '
        'xmlns:vs="http://www.ivoa.net/xml/VODataService/v1.1" '
        'xmlns:tr="http://www.ivoa.net/xml/TAPRegExt/v1.0">\n'
        '<capability standardID="ivo://ivoa.net/std/TAP" xsi:type="tr:TableAccess">'
        f'<interface xsi:type="vs:ParamHTTP" role="std" version="1.1"><accessURL use="base">{url}</accessURL>'
        "</interface>"
        + "".join(f'<dataModel ivo-id="{ivo}">{name}</dataModel>' for ivo, name in data_models) +
        "<language><name>ADQL</name>"
        '<version ivo-id="ivo://ivoa.net/std/ADQL#v2.0">2.0</version>'
        '<version ivo-id="ivo://ivoa.net/std/ADQL#v2.1">2.1</version>'
        "<description>ADQL 2.1 translated to SQLite; cones (CONTAINS, INTERSECTS, DISTANCE) use the sky index"
        f"</description>{features}</language>"
        + output_formats_xml() +
        '<uploadMethod ivo-id="ivo://ivoa.net/std/TAPRegExt#upload-inline"/>'
        '<uploadMethod ivo-id="ivo://ivoa.net/std/TAPRegExt#upload-http"/>'
        '<uploadMethod ivo-id="ivo://ivoa.net/std/TAPRegExt#upload-https"/>'
        f"<retentionPeriod><default>{int(settings.job_lifetime_days * 86400)}</default></retentionPeriod>"
        f"<executionDuration><default>{settings.async_timeout_s}</default>"
        f"<hard>{settings.async_max_timeout_s}</hard></executionDuration>"
        f'<outputLimit><default unit="row">{settings.default_maxrec}</default>'
        f'<hard unit="row">{settings.max_maxrec}</hard></outputLimit>'
        f'<uploadLimit><hard unit="byte">{settings.upload_max_bytes}</hard></uploadLimit>'
        "</capability>\n"
        + vosi("ivo://ivoa.net/std/VOSI#capabilities", "capabilities")
        + vosi("ivo://ivoa.net/std/VOSI#availability", "availability")
        + vosi("ivo://ivoa.net/std/VOSI#tables-1.1", "tables")
        + (f'<capability standardID="ivo://ivoa.net/std/DALI#examples"><interface xsi:type="vr:WebBrowser">'
           f'<accessURL use="full">{url}/examples</accessURL></interface></capability>\n')
        + "</vosi:capabilities>\n")
    return body.encode("utf-8")
