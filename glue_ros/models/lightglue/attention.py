"""LightGlue's rotary position encoding and its self- and cross-attention blocks.

Built for fast CPU inference on one image pair: the tokens of both images live in one buffer
``(1, N0 + N1, 2D)`` (descriptors, then the attention context), so every projection, layer
norm and feed-forward runs once per block for the pair, and the residual update is written in
place; the rotary encoding is one complex multiplication; the attention message projections are
folded into the first feed-forward layer, and the query/key/value projections into one product;
attention is the fused ``scaled_dot_product_attention`` (no N x M attention matrix).
Each block also has a ``forward_static`` for the padded, fixed-shape export graph.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from glue_ros.models.lightglue.derived import derived_weights


def _feed_forward(dim: int) -> nn.Sequential:
    # Indices 0, 1 and 3 hold the checkpoint tensors ffn.0 (linear), ffn.1 (norm), ffn.3 (linear).
    return nn.Sequential(
        nn.Linear(2 * dim, 2 * dim), nn.LayerNorm(2 * dim), nn.GELU(), nn.Linear(2 * dim, dim)
    )


def gelu_aten(x: torch.Tensor) -> torch.Tensor:
    """Exact GELU by ATen's own kernel, not oneDNN's.

    On CPU, PyTorch hands contiguous float32 GELU to oneDNN, which JIT-compiles a kernel for
    every new tensor shape and keeps it in its primitive cache (up to 1024): with keypoint
    counts that change every frame, a node's memory grew by about 25 MB over its first five
    minutes (a jemalloc heap profile: oneDNN's eltwise kernels), and each new shape cost a
    compilation of up to 1 ms. ATen's kernel costs about 0.1 ms more per call at 4096 x 512.
    oneDNN's switch is process-wide: a convolution running in another thread meanwhile takes
    ATen's path too (correct, slower); the node matches one frame at a time.
    """
    if x.device.type != 'cpu' or not torch.backends.mkldnn.enabled:
        return F.gelu(x)
    torch.backends.mkldnn.enabled = False
    try:
        return F.gelu(x)
    finally:
        torch.backends.mkldnn.enabled = True


def _fold_message(ffn_in: nn.Linear, message: nn.Linear) -> tuple[torch.Tensor, torch.Tensor]:
    """Fold ``message`` into the first feed-forward layer that reads ``cat([x, message(c)])``.

    ``ffn_in(cat([x, Wm c + bm])) == cat([x, c]) @ [Wa, Wb Wm]^T + (b + Wb bm)``.
    """
    dim = message.weight.shape[0]
    w_x, w_m = ffn_in.weight[:, :dim], ffn_in.weight[:, dim:]
    weight = torch.cat([w_x, w_m @ message.weight], 1)
    bias = ffn_in.bias + w_m @ message.bias
    return weight, bias


def _split(t: torch.Tensor, parts: int) -> torch.Tensor:
    """View ``(B, N, P * C)`` as ``(B, N, P, C)``, with sizes the ONNX exporter can follow."""
    return t.reshape(t.shape[0], t.shape[1], parts, t.shape[2] // parts)


def _heads(t: torch.Tensor, num_heads: int) -> torch.Tensor:
    """View ``(B, N, H * Dh)`` as ``(B, H, N, Dh)`` without copying."""
    return _split(t, num_heads).transpose(1, 2)


def _tokens(t: torch.Tensor) -> torch.Tensor:
    """View ``(B, H, N, Dh)`` attention output as ``(B, N, H, Dh)`` (contiguous for SDPA)."""
    return t.transpose(1, 2)


class RotaryEncoding(nn.Module):
    """Learned Fourier features of keypoint positions, applied as a rotary encoding.

    ``Wr`` projects the normalised position (and scale/orientation) on ``head_dim / 2``
    frequencies; each frequency rotates one pair of consecutive query/key channels.
    """

    def __init__(self, in_dim: int, head_dim: int):
        super().__init__()
        self.Wr = nn.Linear(in_dim, head_dim // 2, bias=False)
        nn.init.normal_(self.Wr.weight, 0.0, 1.0)

    def forward(self, coords: torch.Tensor) -> torch.Tensor:
        """Map ``(B, N, in_dim)`` positions to ``(B, N, 2, 1, head_dim)`` cosines and sines."""
        phase = self.Wr(coords.to(self.Wr.weight.dtype))
        # Non-negative dims only: the ONNX exporter rewrites a shared constant -1 in place.
        rope = torch.stack([phase.cos(), phase.sin()], 2).repeat_interleave(2, dim=3)
        return rope.unsqueeze(3)

    def rotations(self, coords: torch.Tensor) -> torch.Tensor:
        """Map ``(B, N, in_dim)`` positions to unit complex rotations ``(B, N, 1, head_dim/2)``.

        Multiplying the channel pairs of a query/key, seen as complex numbers, by these applies
        the same rotary encoding as :meth:`forward` in a single operation.
        """
        phase = self.Wr(coords.to(self.Wr.weight.dtype))
        return torch.polar(torch.ones_like(phase), phase).unsqueeze(2)


def _attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, bf16: bool) -> torch.Tensor:
    """Fused attention; in bfloat16 when asked and on the CPU (the result comes back fp32)."""
    if bf16 and q.device.type == 'cpu' and q.dtype == torch.float32:
        return F.scaled_dot_product_attention(q.bfloat16(), k.bfloat16(), v.bfloat16()).float()
    return F.scaled_dot_product_attention(q, k, v)


class AttentionBlock(nn.Module):
    """Attention followed by ``x + ffn(cat([x, message]))``; the message projection is folded.

    Eager matching keeps the tokens in a buffer ``(1, T, 2D)``: descriptors in the first half,
    attention context in the second, so that the feed-forward reads the buffer without a
    concatenation and the residual update writes into it in place.
    """

    def __init__(self, dim: int, num_heads: int):
        super().__init__()
        if dim % num_heads or (dim // num_heads) % 2:
            raise ValueError(
                f'descriptor_dim {dim} must split into {num_heads} heads of even size'
            )
        self.dim, self.num_heads = dim, num_heads
        self.ffn = _feed_forward(dim)
        self.bf16 = False  # set by LightGlue from conf['cpu_bf16_attention']

    def _ffn_in(self) -> tuple[torch.Tensor, torch.Tensor]:
        params = [
            self.ffn[0].weight,
            self.ffn[0].bias,
            self._message().weight,
            self._message().bias,
        ]
        return derived_weights(
            self, 'ffn_in', params, lambda: _fold_message(self.ffn[0], self._message())
        )

    def _message(self) -> nn.Linear:
        raise NotImplementedError

    def _update_buffer(self, buf: torch.Tensor) -> None:
        """``x += ffn(cat([x, message]))`` on the token buffer ``(1, T, 2D)``, in place."""
        w_in, b_in = self._ffn_in()
        hidden = gelu_aten(self.ffn[1](F.linear(buf[0], w_in, b_in))).to(buf.dtype)
        x = buf[0, :, : self.dim]
        out = self.ffn[3]
        x.addmm_(hidden, out.weight.t().to(buf.dtype)).add_(out.bias.to(buf.dtype))

    def _update(self, x: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        """Return ``x + ffn(cat([x, message]))`` for ``(B, N, D)`` tensors (export graph)."""
        w_in, b_in = self._ffn_in()
        hidden = F.gelu(self.ffn[1](F.linear(torch.cat([x, context], 2), w_in, b_in)))
        return x + self.ffn[3](hidden)

    def _write_context(
        self, buf: torch.Tensor, n0: int, c0: torch.Tensor, c1: torch.Tensor | None
    ) -> None:
        """Copy the attention outputs ``(1, H, N, Dh)`` of both images into the buffer."""
        buf[:, :n0, self.dim :] = _tokens(c0).flatten(2)
        if c1 is not None:
            buf[:, n0:, self.dim :] = _tokens(c1).flatten(2)


class SelfAttentionBlock(AttentionBlock):
    """Self-attention with rotary positions, then a residual feed-forward update.

    Checkpoint tensors: ``Wqkv`` (channels ordered head, channel, q/k/v), ``out_proj`` and
    ``ffn``. Eager matching projects with the rows of ``Wqkv`` regrouped as ``[q, k, v]`` and
    rotates queries and keys as complex numbers; the export graph, which has no complex type,
    projects on ``[q, k, rot(q), rot(k), v]`` where ``rot`` is the rotary "rotate half"
    permutation, then combines ``q * cos + rot(q) * sin``.
    """

    def __init__(self, dim: int, num_heads: int):
        super().__init__(dim, num_heads)
        self.Wqkv = nn.Linear(dim, 3 * dim)
        self.out_proj = nn.Linear(dim, dim)
        channel = torch.arange(dim)
        partner = channel ^ 1  # rotate_half pairs channels (2t, 2t + 1) inside each head
        sign = torch.where(channel % 2 == 0, -1.0, 1.0)
        ones = torch.ones(dim)
        rows = torch.cat(
            [3 * channel, 3 * channel + 1, 3 * channel + 2, 3 * partner, 3 * partner + 1]
        )
        self.register_buffer('_rows', rows, persistent=False)
        self.register_buffer('_signs', torch.cat([ones, ones, ones, sign, sign]), persistent=False)

    def _message(self) -> nn.Linear:
        return self.out_proj

    def _projection(self, rotated: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """Rows ``[q, k, v]``, followed by ``[rot(q), rot(k)]`` when ``rotated``."""

        def build() -> tuple[torch.Tensor, torch.Tensor]:
            rows = self._rows if rotated else self._rows[: 3 * self.dim]
            signs = self._signs[: rows.shape[0]].to(self.Wqkv.weight.dtype)
            return (
                self.Wqkv.weight.index_select(0, rows) * signs[:, None],
                self.Wqkv.bias.index_select(0, rows) * signs,
            )

        return derived_weights(
            self, f'qkv{int(rotated)}', [self.Wqkv.weight, self.Wqkv.bias], build
        )

    def forward(self, buf: torch.Tensor, rope: torch.Tensor, n0: int) -> torch.Tensor:
        """Update the token buffer ``(1, N0 + N1, 2D)`` in place; each image attends to itself.

        ``N1`` may be 0: a buffer of one image (:meth:`LightGlue.prepare`).

        ``rope`` holds complex rotations (float32 path) or cosines and sines (autocast path).
        """
        d, h = self.dim, self.num_heads
        weight, bias = self._projection(rotated=not rope.is_complex())
        proj = F.linear(buf[0, :, :d], weight, bias)[None]
        if rope.is_complex():
            qk = torch.view_as_complex(proj[..., : 2 * d].unflatten(-1, (2 * h, -1, 2)))
            qk.mul_(rope)
        else:
            qk = _split(proj[..., : 2 * d], 2 * h)
            qk.mul_(rope[:, :, 0]).addcmul_(_split(proj[..., 3 * d :], 2 * h), rope[:, :, 1])
        q, k, v = (
            _heads(proj[..., :d], h),
            _heads(proj[..., d : 2 * d], h),
            _heads(proj[..., 2 * d : 3 * d], h),
        )
        c0 = _attend(q[:, :, :n0], k[:, :, :n0], v[:, :, :n0], self.bf16)
        c1 = (
            _attend(q[:, :, n0:], k[:, :, n0:], v[:, :, n0:], self.bf16)
            if n0 < buf.shape[1]
            else None
        )
        self._write_context(buf, n0, c0, c1)
        self._update_buffer(buf)
        return buf

    def forward_static(
        self, x: torch.Tensor, rope: torch.Tensor, key_bias: torch.Tensor
    ) -> torch.Tensor:
        """Update the padded tokens ``(2, K, D)`` of both images (export graph)."""
        d, h = self.dim, self.num_heads
        weight, bias = self._projection(rotated=True)
        proj = F.linear(x, weight, bias)
        qk = (
            _split(proj[..., : 2 * d], 2 * h) * rope[:, :, 0]
            + _split(proj[..., 3 * d :], 2 * h) * rope[:, :, 1]
        )
        q, k = qk[:, :, :h].transpose(1, 2), qk[:, :, h:].transpose(1, 2)
        v = _heads(proj[..., 2 * d : 3 * d], h)
        context = F.scaled_dot_product_attention(q, k, v, attn_mask=key_bias)
        return self._update(x, _tokens(context).reshape(x.shape))


class CrossAttentionBlock(AttentionBlock):
    """Bidirectional cross-attention between the two images, then a residual feed-forward.

    Checkpoint tensors: ``to_qk`` (shared query/key projection), ``to_v``, ``to_out``, ``ffn``.
    """

    def __init__(self, dim: int, num_heads: int):
        super().__init__(dim, num_heads)
        self.to_qk = nn.Linear(dim, dim)
        self.to_v = nn.Linear(dim, dim)
        self.to_out = nn.Linear(dim, dim)

    def _message(self) -> nn.Linear:
        return self.to_out

    def _projection(self) -> tuple[torch.Tensor, torch.Tensor]:
        params = [self.to_qk.weight, self.to_qk.bias, self.to_v.weight, self.to_v.bias]
        return derived_weights(
            self,
            'qkv',
            params,
            lambda: (
                torch.cat([self.to_qk.weight, self.to_v.weight], 0),
                torch.cat([self.to_qk.bias, self.to_v.bias], 0),
            ),
        )

    def forward(self, buf: torch.Tensor, n0: int) -> torch.Tensor:
        """Update the token buffer ``(1, N0 + N1, 2D)`` in place: each image attends the other."""
        d, h = self.dim, self.num_heads
        weight, bias = self._projection()
        proj = F.linear(buf[0, :, :d], weight, bias)[None]
        qk, v = _heads(proj[..., :d], h), _heads(proj[..., d:], h)
        qk0, qk1, v0, v1 = qk[:, :, :n0], qk[:, :, n0:], v[:, :, :n0], v[:, :, n0:]
        c0 = _attend(qk0, qk1, v1, self.bf16)
        c1 = _attend(qk1, qk0, v0, self.bf16)
        self._write_context(buf, n0, c0, c1)
        self._update_buffer(buf)
        return buf

    def forward_static(self, x: torch.Tensor, other_key_bias: torch.Tensor) -> torch.Tensor:
        """Update the padded tokens ``(2, K, D)`` of both images (export graph)."""
        d, h = self.dim, self.num_heads
        weight, bias = self._projection()
        proj = F.linear(x, weight, bias)
        other = proj.flip(0)
        context = F.scaled_dot_product_attention(
            _heads(proj[..., :d], h),
            _heads(other[..., :d], h),
            _heads(other[..., d:], h),
            attn_mask=other_key_bias,
        )
        return self._update(x, _tokens(context).reshape(x.shape))


class GlueLayer(nn.Module):
    """One LightGlue layer: self-attention in each image, then cross-attention."""

    def __init__(self, dim: int, num_heads: int):
        super().__init__()
        self.self_attn = SelfAttentionBlock(dim, num_heads)
        self.cross_attn = CrossAttentionBlock(dim, num_heads)

    def forward(
        self, buf: torch.Tensor, rope: torch.Tensor, n0: int, self_done: bool = False
    ) -> torch.Tensor:
        """Run the layer on the token buffer ``(1, N0 + N1, 2D)`` of both images, in place.

        ``self_done``: the self-attention already ran per image (:meth:`LightGlue.prepare`).
        """
        if not self_done:
            buf = self.self_attn(buf, rope, n0)
        return self.cross_attn(buf, n0)
