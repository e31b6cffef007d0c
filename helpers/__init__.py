"""Helpers for the fashion similarity workbook: one module per step of the pipeline.

catalog -> maskers / maskpool -> cutting -> embedding -> index -> search / metrics, run in one call
by pipeline and judged by report, with a content-addressed cache beside them and every error class
in errors. Notebooks import from here and explain (the module table is in the README).
"""
import os

# ONNX Runtime sends no usage telemetry from this workbook; set before any import of onnxruntime
# (this package is imported first by every notebook, CLI command and mask worker).
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

from helpers.settings import PROJECT_ROOT, Settings, SettingsError, load_settings

__all__ = ["PROJECT_ROOT", "Settings", "SettingsError", "load_settings"]
