"""DeepFashion in-shop file names: the name -> `semantic_merge3` parsing path rule, and name stems."""

from __future__ import annotations

import re

from jaxpose.data import bad_input

# The In-shop Clothes Retrieval benchmark's categories (img/<MEN|WOMEN>/<category>/).
# Def-GAN's split script drops their underscores from flattened names; this
# table puts them back so both naming styles find their parsing maps.
INSHOP_CATEGORIES = {
    "MEN": ("Denim", "Jackets_Vests", "Pants", "Shirts_Polos", "Shorts", "Suiting", "Sweaters",
            "Sweatshirts_Hoodies", "Tees_Tanks"),
    "WOMEN": ("Blouses_Shirts", "Cardigans", "Denim", "Dresses", "Graphic_Tees", "Jackets_Coats",
              "Leggings", "Pants", "Rompers_Jumpsuits", "Shorts", "Skirts", "Sweaters",
              "Sweatshirts_Hoodies", "Tees_Tanks"),
}


_DEEPFASHION_NAME = re.compile(
    r"^fash?ion(?P<gender>WOMEN|MEN)(?P<category>[A-Za-z_]+?)id(?P<item>\d{8})(?P<number>\d{2})"
    r"_(?P<view_number>\d)(?P<view>[A-Za-z]+)\.(?:jpg|jpeg|png)$")


def deepfashion_parsing_path(name: str) -> str:
  """Where ADGAN's parsing map of a flattened DeepFashion image name lives.

  The flattened name joins the In-shop path `img/<gender>/<category>/id_<8
  digits>/<nn>_<v>_<view>.jpg` without `img/`, the slashes and the underscores
  after "id" and after the view number, behind a "fashion" prefix (Def-GAN's
  files: "fasion", and no underscores in the category either). The parsing map
  is the In-shop path under `semantic_merge3/`, with .npy:

    fashionWOMENBlouses_Shirtsid0000635004_1front.jpg
      -> semantic_merge3/WOMEN/Blouses_Shirts/id_00006350/04_1_front.npy

  Raises:
    bad_input.BadInput("parsing_path_unknown"): the name does not follow that pattern.
  """
  match = _DEEPFASHION_NAME.match(name)
  if not match:
    raise bad_input.BadInput("parsing_path_unknown",
                   f"cannot locate the parsing map of {name}: expected a flattened In-shop name like "
                   "fashionWOMENBlouses_Shirtsid0000635004_1front.jpg")
  gender, category = match["gender"], match["category"]
  restored = {c.replace("_", ""): c for c in INSHOP_CATEGORIES[gender]}
  category = category if category in INSHOP_CATEGORIES[gender] else restored.get(category, category)
  return (f"semantic_merge3/{gender}/{category}/id_{match['item']}/"
          f"{match['number']}_{match['view_number']}_{match['view']}.npy")


def name_stem(name: str) -> str:
  """File name without its extension: 'a_b.jpg' -> 'a_b'."""
  return name.rsplit(".", 1)[0] if "." in name else name
