"""Official state_dict <-> Flax variable mapping, file import and the converter CLI."""

import json
import logging
import math
import os

import jax
import numpy as np
import pytest

from jaxpose import checkpoints
from jaxpose import convert
from jaxpose.io import state_dict as state_dict_lib
from jaxpose.models import adgan
from jaxpose.models import discriminator as discriminator_lib
from jaxpose.models import vgg as vgg_lib
import numpy_reference as ref
import official_keys
import torch_writer

SMALL = dict(width=8, vgg_widths=(4, 8, 8, 16, 16), style_dim=64, mlp_dim=16, n_res=2)
SMALL_HPARAMS = dict(pose_channels=18, parsing_channels=8, width=8, style_dim=64, n_downsample=2, n_res=2,
                     mlp_dim=16, vgg_arch="vgg19", vgg_widths=(4, 8, 8, 16), image_channels=3)


def _small_generator_state_dict(seed=0):
  return ref.adgan_generator_state_dict(np.random.default_rng(seed), **SMALL)


def _assert_same_state_dicts(a, b):
  assert sorted(a) == sorted(b)
  for k in a:
    np.testing.assert_array_equal(np.asarray(a[k]), np.asarray(b[k]), err_msg=k)


# ----------------------------------------------------------------------------
# Generator mapping


def test_official_generator_keys_import_at_default_size(caplog):
  sd = official_keys.zero_state_dict("adgan_G_state_dict.tsv", prefix="module.")
  assert len(sd) == 162
  hparams = adgan.hparams_from_torch(sd)
  assert hparams == dict(pose_channels=18, parsing_channels=8, width=64, style_dim=512, n_downsample=2,
                         n_res=8, mlp_dim=256, vgg_arch="vgg19", vgg_widths=(64, 128, 256, 512), image_channels=3)
  model = adgan.ADGANGenerator(**hparams)
  assert model == adgan.ADGANGenerator()
  with caplog.at_level(logging.INFO):
    variables = adgan.from_torch(sd, model)
  expected = adgan.abstract_variables(model)
  assert jax.tree.map(np.shape, variables) == jax.tree.map(lambda x: x.shape, expected)
  # The VGG layers past conv4_1 are reported as unused, the AdaIN buffers silently dropped.
  unused = [f"enc_style.vgg.{i}.{k}" for i in (21, 23, 25, 28, 30, 32, 34) for k in ("weight", "bias")]
  messages = " ".join(r.getMessage() for r in caplog.records)
  assert "14 tensors the model does not use" in messages
  assert all(k in messages for k in unused)
  assert "running_mean" not in messages
  # Export: exactly the official 162 keys and shapes (given the full VGG for the unused layers).
  exported = adgan.to_torch(
      variables, model, full_vgg=vgg_lib.from_adgan_generator_state_dict(sd))
  assert {f"module.{k}": v.shape for k, v in exported.items()} == {k: v.shape for k, v in sd.items()}


def test_generator_export_writes_the_official_key_set():
  sd = _small_generator_state_dict()
  model = adgan.ADGANGenerator(**adgan.hparams_from_torch(sd))
  assert adgan.hparams_from_torch(sd) == SMALL_HPARAMS
  variables = adgan.from_torch(sd, model)
  assert adgan.hparams_from_variables(variables) == SMALL_HPARAMS
  # Without the full VGG the layers past conv4_1 are absent; everything else round-trips exactly.
  exported = adgan.to_torch(variables)
  unused = {k for k in sd if k.startswith("enc_style.vgg.") and int(k.split(".")[2]) > 19}
  assert len(unused) == 14
  _assert_same_state_dicts(exported, {k: v for k, v in sd.items() if k not in unused})
  full = adgan.to_torch(variables, model, full_vgg=vgg_lib.from_adgan_generator_state_dict(sd))
  _assert_same_state_dicts(full, sd)
  assert all(v.dtype == np.float32 and v.flags.c_contiguous for v in full.values())


def test_generator_mapping_layouts():
  sd = _small_generator_state_dict()
  model = adgan.ADGANGenerator(**SMALL_HPARAMS)
  variables = adgan.from_torch(sd, model)
  p, f = variables["params"], variables["frozen"]
  np.testing.assert_array_equal(p["pose_encoder"]["stem"]["kernel"],
                                sd["enc_content.model.0.conv.weight"].transpose(2, 3, 1, 0))
  np.testing.assert_array_equal(p["pose_encoder"]["residual_1"]["conv_1"]["bias"],
                                sd["enc_content.model.3.model.1.model.1.conv.bias"])
  np.testing.assert_array_equal(p["adain_mlp"]["dense_2"]["kernel"], sd["mlp.model.2.fc.weight"].T)
  np.testing.assert_array_equal(p["fusion"]["kernel"], sd["fc.fc.weight"].T)
  np.testing.assert_array_equal(p["style_encoder"]["projection"]["kernel"][0, 0],
                                sd["enc_style.model.1.weight"][:, :, 0, 0].T)
  np.testing.assert_array_equal(p["decoder"]["upsample_norm_1"]["gamma"], sd["dec.model.4.norm.gamma"])
  np.testing.assert_array_equal(p["decoder"]["output_conv"]["bias"], sd["dec.model.5.conv.bias"])
  np.testing.assert_array_equal(f["style_encoder"]["vgg"]["conv4_1"]["kernel"],
                                sd["enc_style.vgg.19.weight"].transpose(2, 3, 1, 0))
  assert "conv4_2" not in f["style_encoder"]["vgg"]


def test_one_error_lists_missing_unexpected_and_mis_shaped_keys():
  sd = {f"module.{k}": v for k, v in _small_generator_state_dict().items()}
  del sd["module.dec.model.2.norm.beta"]
  sd["module.dec.model.9.conv.weight"] = np.zeros((3, 3, 1, 1), np.float32)
  sd["module.fc.fc.bias"] = np.zeros((65,), np.float32)
  model = adgan.ADGANGenerator(**SMALL_HPARAMS)
  with pytest.raises(state_dict_lib.StateDictMismatchError) as info:
    adgan.from_torch(sd, model)
  message = str(info.value)
  assert "3 problem(s)" in message
  assert "missing dec.model.2.norm.beta (16,)" in message
  assert "unexpected dec.model.9.conv.weight (3, 3, 1, 1)" in message
  assert "shape mismatch fc.fc.bias: file (65,), model (64,)" in message
  assert len(info.value.problems) == 3


def test_partial_module_prefix_is_not_stripped():
  sd = _small_generator_state_dict()
  sd = {("module." + k if k.startswith("fc.") else k): v for k, v in sd.items()}
  with pytest.raises(state_dict_lib.StateDictMismatchError) as info:
    adgan.from_torch(sd, adgan.ADGANGenerator(**SMALL_HPARAMS))
  assert "missing fc.fc.weight" in str(info.value) and "unexpected module.fc.fc.weight" in str(info.value)


def test_a_different_architecture_is_refused_not_half_loaded():
  sd = _small_generator_state_dict()
  with pytest.raises(state_dict_lib.StateDictMismatchError) as info:
    adgan.from_torch(sd, adgan.ADGANGenerator(**{**SMALL_HPARAMS, "n_res": 3}))
  assert "missing enc_content.model.3.model.2.model.0.conv.weight" in str(info.value)
  with pytest.raises(state_dict_lib.StateDictMismatchError, match="needed to infer"):
    adgan.hparams_from_torch({"model.1.weight": np.zeros((1, 1, 1, 1))})


# ----------------------------------------------------------------------------
# Discriminator mapping


@pytest.mark.parametrize("norm,dropout", [("instance", True), ("batch", True), ("batch", False),
                                          ("instance", False)])
def test_discriminator_round_trip(norm, dropout):
  sd = ref.resnet_discriminator_state_dict(np.random.default_rng(1), 21, width=8, norm=norm, dropout=dropout)
  hparams, in_channels = discriminator_lib.hparams_from_torch({f"module.{k}": v for k, v in sd.items()})
  assert hparams == dict(width=8, n_downsampling=2, n_blocks=3, norm=norm, dropout_rate=0.5 if dropout else 0.0)
  model = discriminator_lib.ResnetDiscriminator(**hparams)
  variables = discriminator_lib.from_torch({f"module.{k}": v for k, v in sd.items()}, model)
  assert set(variables) == ({"params", "batch_stats"} if norm == "batch" else {"params"})
  exported = discriminator_lib.to_torch(variables, model)
  _assert_same_state_dicts(exported, {k: v for k, v in sd.items() if not k.endswith("num_batches_tracked")})


def test_official_discriminator_keys_import_at_default_size():
  for name, in_channels in (("adgan_D_PB_state_dict.tsv", 21), ("adgan_D_PP_state_dict.tsv", 6)):
    sd = official_keys.zero_state_dict(name)
    hparams, got_in = discriminator_lib.hparams_from_torch(sd)
    assert got_in == in_channels
    model = discriminator_lib.ResnetDiscriminator(**hparams)
    assert model == discriminator_lib.ResnetDiscriminator()
    variables = discriminator_lib.from_torch(sd, model)
    assert sum(math.prod(np.shape(x)) for x in jax.tree.leaves(variables)) == sum(
        math.prod(v.shape) for v in sd.values())


# ----------------------------------------------------------------------------
# Files (jaxpose.io.torch_checkpoint) and the CLI


@pytest.mark.parametrize("legacy", [False, True])
def test_import_checkpoint_files(tmp_path, legacy):
  sd = _small_generator_state_dict()
  path = str(tmp_path / "800_net_netG.pth")
  torch_writer.save_state_dict({f"module.{k}": v for k, v in sd.items()}, path, legacy_format=legacy)
  model, variables = convert.import_checkpoint("adgan_generator", path)
  assert model == adgan.ADGANGenerator(**SMALL_HPARAMS)
  expected = adgan.from_torch(sd, model)
  jax.tree.map(np.testing.assert_array_equal, variables, expected)
  assert all(isinstance(x, jax.Array) for x in jax.tree.leaves(variables))

  rng = np.random.default_rng(2)
  for kind, in_channels in (("adgan_discriminator_pb", 21), ("adgan_discriminator_pp", 6)):
    d_sd = ref.resnet_discriminator_state_dict(rng, in_channels, width=8)
    d_path = str(tmp_path / f"{kind}.pth")
    torch_writer.save_state_dict(d_sd, d_path, legacy_format=legacy)
    d_model, d_vars = convert.import_checkpoint(kind, d_path)
    x = rng.normal(size=(1, 16, 12, in_channels)).astype(np.float32)
    np.testing.assert_allclose(d_model.apply(d_vars, x, train=False),
                               ref.resnet_discriminator(d_sd, x.transpose(0, 3, 1, 2)).transpose(0, 2, 3, 1),
                               rtol=1e-4, atol=1e-4)
  with pytest.raises(ValueError, match="a D_PB file"):
    convert.import_checkpoint("adgan_discriminator_pp", str(tmp_path / "adgan_discriminator_pb.pth"))
  with pytest.raises(ValueError, match="a D_PP file"):
    convert.import_checkpoint("adgan_discriminator_pb", str(tmp_path / "adgan_discriminator_pp.pth"))


def test_import_vgg_files_and_load_pretrained_vgg(tmp_path):
  rng = np.random.default_rng(3)
  sd = ref.vgg_state_dict(rng, "vgg19", (4, 8, 8, 16, 16))
  sd["classifier.6.weight"] = np.zeros((10, 4), np.float32)
  path = str(tmp_path / "vgg19-dcbb9e9d.pth")
  torch_writer.save_state_dict(sd, path)
  model, variables = convert.import_checkpoint("vgg19", path)
  x = rng.normal(size=(1, 16, 16, 3)).astype(np.float32)
  out = model.apply(variables, x, ("relu3_1",))["relu3_1"]
  expected = ref.vgg_named_features(sd, "features.", x.transpose(0, 3, 1, 2), "vgg19", ["relu3_1"])["relu3_1"]
  np.testing.assert_allclose(out, expected.transpose(0, 2, 3, 1), rtol=1e-4, atol=1e-4)
  arch, loaded, description = vgg_lib.load_pretrained_vgg(path)
  assert arch == "vgg19" and description == f"torchvision VGG19 ImageNet weights from {path}"
  jax.tree.map(np.testing.assert_array_equal, loaded, jax.device_get(variables))
  # Gatys vgg_conv.pth and an ADGAN netG hold the same weights under other names.
  indices = vgg_lib.torchvision_conv_indices("vgg19")
  gatys_path = str(tmp_path / "vgg_conv.pth")
  torch_writer.save_state_dict({f"{n}.{k}": sd[f"features.{i}.{k}"] for n, i in indices.items()
                                    for k in ("weight", "bias")}, gatys_path, legacy_format=True)
  _, gatys_vars = convert.import_checkpoint("vgg_conv", gatys_path)
  jax.tree.map(np.testing.assert_array_equal, gatys_vars, variables)
  arch, _, description = vgg_lib.load_pretrained_vgg(gatys_path)
  assert arch == "vgg19" and description.startswith("Gatys-style VGG19")
  g_path = str(tmp_path / "800_net_netG.pth")
  torch_writer.save_state_dict(_small_generator_state_dict(), g_path)
  arch, g_vgg, description = vgg_lib.load_pretrained_vgg(g_path)
  assert arch == "vgg19" and "ADGAN generator checkpoint" in description
  assert jax.tree.map(np.shape, g_vgg) == jax.tree.map(np.shape, loaded)


def test_cli_writes_an_orbax_directory_training_can_read(tmp_path, capsys):
  rng = np.random.default_rng(4)
  g_sd = _small_generator_state_dict()
  paths = {"generator": str(tmp_path / "800_net_netG.pth"),
           "discriminator_pb": str(tmp_path / "800_net_netD_PB.pth"),
           "discriminator_pp": str(tmp_path / "800_net_netD_PP.pth")}
  torch_writer.save_state_dict({f"module.{k}": v for k, v in g_sd.items()}, paths["generator"])
  d_sds = {"discriminator_pb": ref.resnet_discriminator_state_dict(rng, 21, width=8),
           "discriminator_pp": ref.resnet_discriminator_state_dict(rng, 6, width=8)}
  for name, d_sd in d_sds.items():
    torch_writer.save_state_dict({f"module.{k}": v for k, v in d_sd.items()}, paths[name])
  out = str(tmp_path / "converted")
  assert convert.main(["--kind", "adgan", "--generator", paths["generator"], "--discriminator_pb",
                       paths["discriminator_pb"], "--discriminator_pp", paths["discriminator_pp"],
                       "--output", out]) == 0
  printed = capsys.readouterr().out
  assert "generator: ADGANGenerator" in printed and "discriminator_pp: ResnetDiscriminator" in printed
  summary = json.load(open(os.path.join(out, "jaxpose_convert.json")))
  assert summary["format"] == 1 and summary["kind"] == "adgan"
  assert summary["networks"]["generator"]["hyperparameters"] == {
      **SMALL_HPARAMS, "vgg_widths": list(SMALL_HPARAMS["vgg_widths"]), "style_init": "official"}
  assert summary["networks"]["discriminator_pb"]["hyperparameters"]["width"] == 8
  tree, step_dir = checkpoints.read_weights(out)
  assert os.path.abspath(step_dir) == os.path.abspath(out)
  assert set(tree) == {"generator", "discriminator_pb", "discriminator_pp"}
  model = adgan.ADGANGenerator(**SMALL_HPARAMS)
  jax.tree.map(np.testing.assert_array_equal, tree["generator"], adgan.from_torch(g_sd, model))
  for name, d_sd in d_sds.items():
    hparams, _ = discriminator_lib.hparams_from_torch(d_sd)
    jax.tree.map(np.testing.assert_array_equal, tree[name],
                 discriminator_lib.from_torch(d_sd, discriminator_lib.ResnetDiscriminator(**hparams)))
  counts = summary["networks"]["generator"]["parameter_counts"]
  assert counts["params"] == sum(np.size(x) for x in jax.tree.leaves(tree["generator"]["params"]))
  with pytest.raises(FileExistsError):
    convert.main(["--kind", "adgan", "--generator", paths["generator"], "--output", out])
