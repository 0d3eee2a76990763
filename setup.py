"""Build hook for the optional C accelerator (metadata lives in pyproject.toml).

Three small C modules speed up the hot loops: `traceconv._otlp_json` reads OTLP/JSON Lines into
columns, `traceconv._wire` encodes varints and joins packet bytes, `traceconv._lanes` assigns
lanes. All are optional: without a C
compiler the build goes on without them and the numpy/msgspec code (same bytes out) is used;
``TRACECONV_NO_C=1`` turns them off at run time.
"""

from setuptools import Extension, setup

FLAGS = ["-O2", "-std=c99", "-Wall"]

setup(
    ext_modules=[
        Extension("traceconv._otlp_json", ["traceconv/_otlp_json.c"], optional=True, extra_compile_args=FLAGS),
        Extension("traceconv._wire", ["traceconv/_wire.c"], optional=True, extra_compile_args=FLAGS),
        Extension("traceconv._lanes", ["traceconv/_lanes.c"], optional=True, extra_compile_args=FLAGS),
    ]
)
