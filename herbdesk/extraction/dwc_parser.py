from herbdesk.extraction.engines.base import FieldValue


def parse_label(lines: list[tuple[str, float]]) -> dict[str, FieldValue]:
    return {}
