"""Drives the web demo in headless Chromium (Debian's chromium + chromium-driver) with Selenium.

  python tests/demo_browser.py http://127.0.0.1:7860 docs/demo_screenshot.png ['donor_hair=3: ...' ...]

loads the page, picks the given dropdown choices (dropdown id=option), generates and
saves a full-page screenshot. Used by tests/test_demo.py and to make the
README's screenshot. The browser may only reach this machine: every other host
name resolves to nothing.
"""

from __future__ import annotations

import shutil
import sys
import time

# Debian's package names; .ci/run installs them when missing.
CHROMIUM = ("chromium", "chromium-browser")
CHROMEDRIVER = "chromedriver"
INSTALL = "apt-get install -y chromium chromium-driver (as root; .ci/run does this)"


def browser(width: int = 1400, height: int = 1000):
  """A headless Chromium under Selenium; RuntimeError saying how to install it when it is missing."""
  from selenium import webdriver  # pylint: disable=g-import-not-at-top
  from selenium.webdriver.chrome.service import Service  # pylint: disable=g-import-not-at-top
  binary = next((shutil.which(name) for name in CHROMIUM if shutil.which(name)), None)
  driver = shutil.which(CHROMEDRIVER)
  missing = [name for name, path in (("chromium", binary), ("chromedriver", driver)) if path is None]
  if missing:
    raise RuntimeError(f"the browser test needs headless Chromium, but {' and '.join(missing)} "
                       f"{'is' if len(missing) == 1 else 'are'} not on PATH: {INSTALL}")
  options = webdriver.ChromeOptions()
  options.binary_location = binary
  for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
              f"--window-size={width},{height}", "--hide-scrollbars",
              # Loopback only: the page must work offline, and nothing else may be contacted.
              "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1 , EXCLUDE localhost"):
    options.add_argument(arg)
  return webdriver.Chrome(service=Service(driver), options=options)


def _wait(condition, timeout: float, what: str):
  deadline = time.monotonic() + timeout
  while time.monotonic() < deadline:
    try:
      value = condition()
      if value:
        return value
    except Exception:  # pylint: disable=broad-except  (the page is still rendering)
      pass
    time.sleep(0.1)
  raise TimeoutError(f"the page did not show {what} within {timeout:.0f} s")


def joint_row(driver, joint: str) -> list[str]:
  """The joint table's row for `joint` as the page shows it: [joint, y, x] (read off the table's text)."""
  from selenium.webdriver.common.by import By  # pylint: disable=g-import-not-at-top
  lines = [line.strip() for line in driver.find_element(By.ID, "joints").text.splitlines()]
  if joint not in lines:
    raise LookupError(f"no row {joint!r} in the joint table")
  i = lines.index(joint)
  return lines[i:i + 3]


def click_pose(driver, fraction_y: float, fraction_x: float) -> None:
  """Clicks the target-pose picture at the given fractions of its height and width."""
  from selenium.webdriver.common.action_chains import ActionChains  # pylint: disable=g-import-not-at-top
  from selenium.webdriver.common.by import By  # pylint: disable=g-import-not-at-top
  image = driver.find_element(By.CSS_SELECTOR, "#pose_view img")
  driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", image)
  size = image.size
  ActionChains(driver).move_to_element_with_offset(
      image, int((fraction_x - 0.5) * size["width"]), int((fraction_y - 0.5) * size["height"])).click().perform()


def upload(driver, elem_id: str, path: str) -> None:
  """Uploads the file `path` into the page's file field `elem_id` (opening the upload section first)."""
  from selenium.webdriver.common.by import By  # pylint: disable=g-import-not-at-top
  fields = driver.find_elements(By.CSS_SELECTOR, f"#{elem_id} input[type=file]")
  if not fields:
    driver.find_element(By.XPATH, "//button[contains(., 'Upload your own picture')]").click()
    fields = _wait(lambda: driver.find_elements(By.CSS_SELECTOR, f"#{elem_id} input[type=file]"), 10,
                   f"the file field {elem_id}")
  fields[0].send_keys(path)


def page_says(driver, text: str, timeout: float = 30) -> str:
  """Waits until the page shows a line containing `text` (a message, a toast); returns that line."""
  from selenium.webdriver.common.by import By  # pylint: disable=g-import-not-at-top
  return _wait(lambda: next((line for line in driver.find_element(By.TAG_NAME, "body").text.splitlines()
                             if text in line), None), timeout, repr(text))


def choose(driver, elem_id: str, option: str) -> None:
  """Picks `option` in the page's dropdown `elem_id` (opens it and clicks the option)."""
  from selenium.webdriver.common.by import By  # pylint: disable=g-import-not-at-top
  field = driver.find_element(By.CSS_SELECTOR, f"#{elem_id} input")
  driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", field)
  field.click()
  item = _wait(lambda: [li for li in driver.find_elements(By.CSS_SELECTOR, f"#{elem_id} li[role=option]")
                        if li.get_attribute("aria-label") == option], 10, f"{option!r} among the choices of {elem_id}")
  item[0].click()
  _wait(lambda: field.get_attribute("value") == option, 10, f"{option!r} chosen in {elem_id}")


def generate(driver, timeout: float = 60) -> str:
  """Clicks Generate and waits for the timing line; returns its text."""
  from selenium.webdriver.common.by import By  # pylint: disable=g-import-not-at-top
  button = driver.find_element(By.XPATH, "//button[normalize-space()='Generate']")
  driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", button)
  button.click()
  def timing():
    text = driver.find_element(By.ID, "timing").text
    return text if "for this request" in text else None
  return _wait(timing, timeout, "the result's timing")


def open_page(driver, url: str, timeout: float = 60) -> None:
  from selenium.webdriver.common.by import By  # pylint: disable=g-import-not-at-top
  driver.get(url)
  _wait(lambda: driver.find_element(By.XPATH, "//button[normalize-space()='Generate']").is_enabled(), timeout,
        "its Generate button")
  _wait(lambda: driver.find_elements(By.CSS_SELECTOR, "#pose_view img"), timeout, "the target pose")


def screenshot(driver, path: str) -> str:
  """A PNG of the whole page: the viewport is stretched to the page's height for the shot (DevTools protocol)."""
  driver.execute_script("window.scrollTo(0, 0);")
  size = driver.execute_cdp_cmd("Page.getLayoutMetrics", {})["cssContentSize"]
  driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
      "width": int(size["width"]), "height": int(size["height"]), "deviceScaleFactor": 1, "mobile": False})
  try:
    time.sleep(0.5)  # let the page lay itself out at the new height
    driver.save_screenshot(path)
  finally:
    driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
  return path


def main(url: str, path: str, *choices: str) -> None:
  """choices: 'dropdown id=option' pairs to pick first (e.g. 'donor_upper_clothes=3: synth_id00009_pose00')."""
  driver = browser()
  try:
    open_page(driver, url)
    for choice in choices:
      choose(driver, *choice.split("=", 1))
    print(generate(driver))
    print(screenshot(driver, path))
  finally:
    driver.quit()


if __name__ == "__main__":
  main(*sys.argv[1:])
