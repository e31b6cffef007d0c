"""Helpers for the fashion similarity workbook: one module per step of the pipeline.

catalog -> maskers / maskpool -> cutting -> embedding -> index -> search / metrics, run in one call
by pipeline and judged by report, with a content-addressed cache beside them and every error class
in errors. Notebooks import from here and explain (the module table is in docs/architecture.md).
"""
import os
import sys

# ONNX Runtime sends no usage telemetry from this workbook; set before any import of onnxruntime
# (this package is imported first by every notebook, CLI command and mask worker).
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

# chromadb and nbformat import jsonschema, whose optional "iri" format check imports rfc3987_syntax,
# which builds a grammar at import: 2 s of every kernel, CLI command and chroma server. The workbook
# never validates IRIs; jsonschema treats the module as absent (its import is guarded). Not done when
# something already imported it.
sys.modules.setdefault("rfc3987_syntax", None)  # type: ignore[arg-type]

from helpers.settings import PROJECT_ROOT, Settings, SettingsError, load_settings

__all__ = ["PROJECT_ROOT", "Settings", "SettingsError", "load_settings"]
