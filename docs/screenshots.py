#!/usr/bin/env python3
"""Screenshots of the shop's main pages for the docs, taken in a real browser.

    python3 docs/screenshots.py [BASE_URL] [OUT_DIR]     (BASE_URL "" = the embedded shop)

Drives headless Chromium over WebDriver (Debian: chromium, chromium-driver;
PyPI: selenium) through a shopper's visit to BASE_URL (default: an embedded shop
this script starts from target/release/shop in a temporary directory) and
writes docs/img/shop-*.png: the catalog, a product, the cart, the checkout, an
order. Only BASE_URL (127.0.0.1) is contacted. A docs tool, not a test: the
browser tests of issue 14 are separate.
"""
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid

from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_embedded():
    port = free_port()
    work = tempfile.mkdtemp(prefix="distshop-shots.")
    env = dict(os.environ, SHOP_LISTEN=f"127.0.0.1:{port}", SHOP_ADMIN_PASSWORD="screenshots-admin-pw")
    proc = subprocess.Popen([os.path.join(ROOT, "target/release/shop")], cwd=work, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    for _ in range(120):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return base, proc, work
        except OSError:
            time.sleep(0.5)
    proc.kill()
    raise SystemExit("the embedded shop did not start")


def main():
    base = sys.argv[1] if len(sys.argv) > 1 and sys.argv[1] else None
    out = sys.argv[2] if len(sys.argv) > 2 else os.path.join(ROOT, "docs/img")
    proc = work = driver = None
    if base is None:
        base, proc, work = start_embedded()
    try:
        driver = start_browser()
        visit(driver, base, out)
    finally:
        if driver:
            driver.quit()
        if proc:
            proc.terminate()
            proc.wait(timeout=10)
            shutil.rmtree(work, ignore_errors=True)


def start_browser():
    opts = Options()
    for a in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
              "--window-size=1280,900", "--hide-scrollbars"):
        opts.add_argument(a)
    opts.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    driver = webdriver.Chrome(options=opts, service=Service(shutil.which("chromedriver") or "/usr/bin/chromedriver"))
    driver.set_page_load_timeout(20)
    return driver


def visit(driver, base, out):
    """A shopper's visit, with a screenshot of each main page."""
    def shot(name):
        path = os.path.join(out, f"shop-{name}.png")
        driver.save_screenshot(path)
        print(f"wrote {path}")

    def submit(form_css, then=None):
        driver.find_element(By.CSS_SELECTOR, form_css + " button[type=submit]").click()
        if then:  # a click only starts the post: wait for its answer's page
            WebDriverWait(driver, 10).until(lambda d: then in d.current_url)

    driver.get(base + "/register")
    email = f"shopper-{uuid.uuid4().hex[:8]}@example.org"
    driver.find_element(By.NAME, "name").send_keys("Ada Lovelace")
    driver.find_element(By.NAME, "email").send_keys(email)
    driver.find_element(By.NAME, "password").send_keys("correct horse battery")
    submit("form.stack", then="/?notice=")
    driver.get(base + "/?category=Home+%26+Kitchen")
    shot("catalog")
    # add two products from the grid, one from a product page
    for i in (0, 1):
        driver.find_elements(By.CSS_SELECTOR, "form.add")[i].find_element(By.TAG_NAME, "button").click()
        WebDriverWait(driver, 10).until(lambda d: "/cart?notice=added" in d.current_url)
        driver.get(base + "/?category=Home+%26+Kitchen")
    in_stock = "//li[contains(@class,'card')][.//form[contains(@class,'add')]]//a[contains(@class,'pic')]"
    link = driver.find_elements(By.XPATH, in_stock)[2].get_attribute("href")
    driver.get(link)
    shot("product")
    submit("form.row", then="/cart?notice=added")
    driver.get(base + "/cart")
    shot("cart")
    driver.get(base + "/checkout")
    shot("checkout")
    submit("form.actions", then="notice=placed")
    shot("order")


if __name__ == "__main__":
    main()
