"""Only the compiled scanner; everything else about the package is in pyproject.toml."""

from setuptools import Extension, setup

setup(
    ext_modules=[
        # optional: without a C compiler the install still succeeds and opening a log takes
        # the pure-Python path (same result, a few times slower; herbdesk.events.fastscan)
        Extension(
            "herbdesk.events._scan",
            ["herbdesk/events/_scan.c"],
            optional=True,
            extra_compile_args=["-O3"],
        )
    ]
)
