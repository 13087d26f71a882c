"""The three reference documents, with our decisions applied, served at a sandbox's address."""

from __future__ import annotations

import copy
import json
import threading
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from openapi_core import OpenAPI

from . import overlay
from .rows import generate_data_path
from .strict import make_strict

REFERENCE = Path(__file__).resolve().parents[3] / "docs" / "reference" / "monetate"


@dataclass(frozen=True)
class Api:
    """One of Monetate's APIs: its document, and where it lives under the API host."""

    name: str
    file: str
    #: The path prefix under the host, with ``{retailer}``/``{environment}`` where they go.
    prefix: str
    decisions: tuple[Any, ...]


APIS = (
    Api("Auth", "auth-api.openapi.yml", "/api/auth/v0", overlay.AUTH_DECISIONS),
    Api("Data", "data-api.openapi.yml", "/api/data/v1/{retailer}/{environment}", overlay.DATA_DECISIONS),
    Api(
        "Metadata",
        "metadata-api.openapi.yml",
        "/api/metadata/v1/{retailer}/{environment}",
        overlay.METADATA_DECISIONS,
    ),
)
DATA_API = APIS[1]


@cache
def _published(file: str) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((REFERENCE / file).read_text(encoding="utf-8"))
    return loaded


@cache
def _decided(api: Api) -> dict[str, Any]:
    doc = copy.deepcopy(_published(api.file))
    for decide in api.decisions:
        decide(doc)
    return doc


@dataclass(frozen=True)
class Served:
    """A document ready for openapi-core, and the raw dict it was built from."""

    api: Api
    spec: OpenAPI
    doc: dict[str, Any]
    server_url: str


class Documents:
    """Builds (and keeps) the documents for each sandbox address and dataset schema."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._built: dict[tuple[str, ...], Served] = {}

    def api_for(self, path: str, retailer: str, environment: str) -> Api | None:
        """The API whose prefix ``path`` starts with (the Auth API is not per retailer)."""
        for api in APIS:
            prefix = api.prefix.format(retailer=retailer, environment=environment)
            if path.startswith(prefix + "/"):
                return api
        return None

    def served(
        self,
        api: Api,
        base_url: str,
        retailer: str,
        environment: str,
        dataset_name: str | None = None,
        dataset: dict[str, Any] | None = None,
    ) -> Served:
        """``api``'s document at ``base_url``; for the Data API with ``dataset_name``'s rows."""
        fields = json.dumps(dataset["fields"], sort_keys=True) if dataset is not None else ""
        key = (api.name, base_url, retailer, environment, dataset_name or "", fields)
        with self._lock:
            found = self._built.get(key)
        if found is not None:
            return found
        doc = copy.deepcopy(_decided(api))
        server_url = base_url + api.prefix.format(retailer=retailer, environment=environment)
        overlay.servers(doc, server_url)
        if api.name == "Data":
            generate_data_path(doc, dataset_name if dataset is not None else None, dataset)
        make_strict(doc)
        served = Served(api, OpenAPI.from_dict(doc), doc, server_url)
        with self._lock:
            self._built[key] = served
        return served
