"""Layer specifications for ``Net(input, layers)`` (Dense, Conv2d, MaxPool2d,
BatchNorm) and the architecture strings: parsing ``Net("784-512-512-10")``
or ``Net("1x28x28-conv5x5:32,pool2,bn,sign,dense:10")`` and writing
``Net.architecture``."""

import re
from dataclasses import dataclass
from typing import Optional

from ._errors import InvalidArgument
from ._util import Activation, LayerKind, Output

__all__ = ["Dense", "Conv2d", "MaxPool2d", "BatchNorm", "parse", "format_arch",
           "default_padding"]

# The activation / loss defaults of a spec whose field is None (see Dense):
# hidden layers take `hidden`; the last layer the output's default.


def _resolve(spec, last, hard, hidden):
    act = spec.activation
    if act is None:
        act = ("sign" if hard else "identity") if last else hidden
    loss = spec.loss
    if loss is None:
        loss = "hinge" if (last and hard) else "soft_hinge"
    return act, loss


@dataclass
class Dense:
    """A dense layer specification for ``Net(input_width, layers)``.
    ``activation=None`` means: sign for hidden layers; for the last layer,
    identity under a softmax output and sign under a hard-threshold output.
    ``loss=None`` means soft hinge, except hinge for a hard-threshold output
    layer (doc/guide.md, section 9)."""
    units: int
    activation: Optional[object] = None
    qrelu_bits: int = 2
    loss: Optional[object] = None
    weight_targets: bool = True
    bias: bool = True
    binary_weights: object = "none"

    def _add_to(self, net, last, hard):
        act, loss = _resolve(self, last, hard, "sign")
        return net.add_dense(self.units, act, qrelu_bits=self.qrelu_bits, loss=loss,
                             weight_targets=self.weight_targets, bias=self.bias,
                             binary_weights=self.binary_weights)


@dataclass
class Conv2d:
    """A 2-d convolution for ``Net(input_width, layers, input_shape=(c, h, w))``
    (see Net.add_conv2d).  ``kernel``: an int or (height, width);
    ``padding=None``: (min(kernel) - 1) // 2, the "same" size for odd
    kernels.  ``activation=None`` means identity (a hard-threshold block is
    conv -> pool -> batch norm -> sign, the threshold on its last layer),
    or the output's default for the last layer; ``loss=None`` as for
    Dense."""
    channels: int
    kernel: object = 3
    stride: int = 1
    padding: Optional[int] = None
    activation: Optional[object] = None
    qrelu_bits: int = 2
    loss: Optional[object] = None
    weight_targets: bool = True
    bias: bool = True
    binary_weights: object = "none"

    def _add_to(self, net, last, hard):
        act, loss = _resolve(self, last, hard, "identity")
        return net.add_conv2d(self.channels, self.kernel, stride=self.stride,
                              padding=self.padding, activation=act,
                              qrelu_bits=self.qrelu_bits, loss=loss,
                              weight_targets=self.weight_targets, bias=self.bias,
                              binary_weights=self.binary_weights)


@dataclass
class MaxPool2d:
    """A max-pool over size x size windows (see Net.add_maxpool2d);
    ``stride=None`` means equal to ``size``.  Defaults as Conv2d."""
    size: int = 2
    stride: Optional[int] = None
    activation: Optional[object] = None
    qrelu_bits: int = 2
    loss: Optional[object] = None
    weight_targets: bool = True

    def _add_to(self, net, last, hard):
        act, loss = _resolve(self, last, hard, "identity")
        return net.add_maxpool2d(self.size, stride=self.stride, activation=act,
                                 qrelu_bits=self.qrelu_bits, loss=loss,
                                 weight_targets=self.weight_targets)


@dataclass
class BatchNorm:
    """Batch normalization over the channels of the layer below (see
    Net.add_batchnorm).  Defaults as Conv2d."""
    momentum: float = 0.1
    epsilon: float = 1e-5
    activation: Optional[object] = None
    qrelu_bits: int = 2
    loss: Optional[object] = None
    weight_targets: bool = True

    def _add_to(self, net, last, hard):
        act, loss = _resolve(self, last, hard, "identity")
        return net.add_batchnorm(momentum=self.momentum, epsilon=self.epsilon,
                                 activation=act, qrelu_bits=self.qrelu_bits, loss=loss,
                                 weight_targets=self.weight_targets)


SPECS = (Dense, Conv2d, MaxPool2d, BatchNorm)


def default_padding(kernel_h, kernel_w):
    """The padding the htnn tool and Net.add_conv2d use when none is given."""
    return (min(kernel_h, kernel_w) - 1) // 2


# --- parsing -----------------------------------------------------------------

_INPUT = re.compile(r"^(\d+)(?:x(\d+)x(\d+))?$")
# "512", "512:sign", "256:qrelu2": a dense layer (hidden default sign)
_BARE = re.compile(r"^(\d+)(?::([a-z_\-]+?)(\d*))?$")
_CONV = re.compile(r"^conv(\d+)(?:x(\d+))?:(\d+)((?::[sp]\d+)*)$")
_POOL = re.compile(r"^pool(\d+)((?::s\d+)*)$")
_DENSE = re.compile(r"^dense:(\d+)$")
_ACT_WORD = re.compile(r"^(sign|step|relu|identity|qrelu)([1-8]?)$")
_SUFFIX = re.compile(r":([sp])(\d+)")

_GRAMMAR = ("items: WIDTH or WIDTH:ACTIVATION (a dense layer, sign by default), "
            "conv<K>[x<K>]:<channels>[:s<stride>][:p<padding>], pool<K>[:s<stride>], bn, "
            "dense:<units>, flatten, or an activation name (sign, step, relu, identity, "
            "qrelu, qrelu<bits>) for the layer before it")


def _fail(text, why):
    raise InvalidArgument("architecture %r: %s" % (text, why))


def _suffixes(text, item, found, allowed):
    out = {}
    for key, value in _SUFFIX.findall(found):
        if key not in allowed:
            _fail(text, "%r: no :%s suffix here" % (item, key))
        out[key] = int(value)
    return out


def _parse_item(text, item):
    """One layer item -> (spec, explicit_activation) or None if not a layer."""
    m = _BARE.match(item)
    if m:
        act, bits = m.group(2), m.group(3)
        if bits and (act or "").lower() != "qrelu":
            _fail(text, "only qrelu takes bits (%r)" % item)
        return Dense(int(m.group(1)), activation=act,
                     qrelu_bits=int(bits) if bits else 2), act is not None
    m = _CONV.match(item)
    if m:
        kh = int(m.group(1))
        kw = int(m.group(2)) if m.group(2) else kh
        sfx = _suffixes(text, item, m.group(4), "sp")
        return Conv2d(int(m.group(3)), (kh, kw), stride=sfx.get("s", 1),
                      padding=sfx.get("p")), False
    m = _POOL.match(item)
    if m:
        sfx = _suffixes(text, item, m.group(2), "s")
        return MaxPool2d(int(m.group(1)), stride=sfx.get("s")), False
    if item == "bn":
        return BatchNorm(), False
    m = _DENSE.match(item)
    if m:
        return Dense(int(m.group(1)), activation=None), False
    return None


def parse(text, with_input):
    """An architecture string -> (input, [spec, ...]).  With `with_input`
    the first item is the input: WIDTH (input = int) or CxHxW (input =
    (c, h, w)); without, input is None.  Items are separated by '-' or ','.
    """
    if not isinstance(text, str):
        raise InvalidArgument("architecture must be a string, got %r" % (text,))
    parts = re.split(r"[-,]", re.sub(r"\s+", "", text).lower())
    inp = None
    if with_input:
        if len(parts) < 2:
            _fail(text, "expected 'input-units-...-outputs', e.g. '784-512-512-10' or "
                  "'1x28x28-conv5x5:32,pool2,bn,sign,dense:10'")
        m = _INPUT.match(parts[0])
        if not m:
            _fail(text, "bad input %r (expected WIDTH or CHANNELSxHEIGHTxWIDTH)" % parts[0])
        inp = (tuple(int(g) for g in m.groups()) if m.group(2) else int(m.group(1)))
        parts = parts[1:]
    specs, explicit, tool_dense = [], [], []
    for item in parts:
        if item == "flatten":  # NHWC rows are already flat
            continue
        m = _ACT_WORD.match(item)
        if m:
            if not specs or explicit[-1]:
                _fail(text, "activation %r does not follow a layer without one" % item)
            specs[-1].activation = m.group(1)
            specs[-1].qrelu_bits = int(m.group(2)) if m.group(2) else 2
            explicit[-1] = True
            continue
        got = _parse_item(text, item)
        if got is None:
            _fail(text, "bad item %r (%s)" % (item, _GRAMMAR))
        specs.append(got[0])
        explicit.append(got[1])
        tool_dense.append(item.startswith("dense:"))
    if not specs:
        _fail(text, "no layers")
    # Items of the tool's grammar are linear unless an activation follows
    # (Conv2d, MaxPool2d and BatchNorm specs already default to identity);
    # the last layer keeps the output's default.
    for spec, exp, tool in zip(specs[:-1], explicit, tool_dense):
        if tool and not exp:
            spec.activation = "identity"
    return inp, specs


# --- writing -----------------------------------------------------------------

_ACT_TEXT = {Activation.IDENTITY: "identity", Activation.SIGN: "sign",
             Activation.STEP: "step", Activation.QRELU: "qrelu", Activation.RELU: "relu"}


def act_text(info):
    text = _ACT_TEXT[info.activation]
    return text + str(info.qrelu_bits) if info.activation == Activation.QRELU else text


def item_text(info):
    """A layer as an item of the --arch grammar (without its activation)."""
    if info.kind == LayerKind.CONV2D:
        kh, kw = info.kernel
        s = "conv%dx%d:%d" % (kh, kw, info.out_shape[0])
        if info.stride != 1:
            s += ":s%d" % info.stride
        if info.padding != default_padding(kh, kw):
            s += ":p%d" % info.padding
        return s
    if info.kind == LayerKind.MAXPOOL2D:
        k = info.kernel[0]
        return "pool%d" % k + (":s%d" % info.stride if info.stride != k else "")
    if info.kind == LayerKind.BATCHNORM:
        return "bn"
    return "dense:%d" % info.out_width


def format_arch(input_shape, infos, output):
    """Net.architecture: the old form '784-512:sign-10:identity' for dense
    nets over flat inputs, else 'CxHxW-' (or 'WIDTH-') followed by the
    htnn tool's --arch items."""
    c, h, w = input_shape
    flat = h == 1 and w == 1
    if flat and all(i.kind == LayerKind.DENSE for i in infos):
        return "-".join([str(c)] + ["%d:%s" % (i.out_width, act_text(i)) for i in infos])
    hard = output == Output.HARD_THRESHOLD
    items = []
    for k, i in enumerate(infos):
        items.append(item_text(i))
        last = k == len(infos) - 1
        default = (Activation.SIGN if hard else Activation.IDENTITY) if last \
            else Activation.IDENTITY
        if i.activation != default:
            items.append(act_text(i))
    head = str(c) if flat else "%dx%dx%d" % (c, h, w)
    return head + "-" + ",".join(items)
