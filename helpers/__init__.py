"""Helpers for the fashion similarity workbook: one module per step of the pipeline.

catalog -> masking -> cutting -> embedding -> index -> search / metrics, with a
content-addressed cache beside them. Notebooks import from here and explain.
"""
from helpers.settings import PROJECT_ROOT, Settings, SettingsError, load_settings

__all__ = ["PROJECT_ROOT", "Settings", "SettingsError", "load_settings"]
