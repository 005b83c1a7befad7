"""Loaded by schemathesis in openapi_schemathesis.rs (SCHEMATHESIS_HOOKS).

When a filtered draw gives up, Hypothesis describes the filter's lambda for its statistics by
parsing the source file that holds it. Deep in a draw, CPython 3.11 can refuse that parse with
"SystemError: AST constructor recursion depth mismatch", and the run ends with a runtime error
that says nothing about the API. The description is only a label: without the source it is
"lambda: <unknown>", as Hypothesis itself writes when it cannot find a lambda's source.
"""

from hypothesis.internal import lambda_sources

_describe = getattr(lambda_sources, "_lambda_description", None)

if _describe is not None:

    def _lambda_description(f, *args, **kwargs):
        try:
            return _describe(f, *args, **kwargs)
        except SystemError:
            return "lambda: <unknown>"

    lambda_sources._lambda_description = _lambda_description
