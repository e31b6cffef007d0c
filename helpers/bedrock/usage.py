"""The ledger of answered (billed) Bedrock calls, so the clean-up step can say what was spent."""
from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pandas as pd

from helpers.settings import Settings


# --- invoking ----------------------------------------------------------------------------

USAGE_FILE = "bedrock_usage.jsonl"
_usage_lock = threading.Lock()


def record_usage(settings: Settings, model_id: str, price: float) -> None:
    """Append one answered (billed) call to the usage ledger in the cache folder, so the
    clean-up step can say how many calls were made and what they cost. No request content,
    no credentials: model id, price and time only."""
    path = Path(settings.cache_dir) / USAGE_FILE
    line = json.dumps({"model_id": model_id, "price_usd": price, "time": time.time()}) + "\n"
    with _usage_lock:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(line)


def usage_summary(settings: Settings) -> pd.DataFrame:
    """Calls answered by Bedrock since the cache was last cleared, per model, with their cost."""
    path = Path(settings.cache_dir) / USAGE_FILE
    rows = [json.loads(l) for l in path.read_text().splitlines() if l.strip()] if path.is_file() else []
    if not rows:
        return pd.DataFrame({"model_id": [], "calls": [], "dollars": []})
    frame = pd.DataFrame(rows)
    return (frame.groupby("model_id").agg(calls=("price_usd", "size"), dollars=("price_usd", "sum"))
            .reset_index())
