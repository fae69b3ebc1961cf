"""Reading a label's structure: fuzzy field captions, dates and places in label forms.

The rule-based parser (herbdesk.extraction.dwc_parser) uses these; dates and places are read
by herbdesk.quality's readers, so the engine and the record checks agree on what a value is.
"""
