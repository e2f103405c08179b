"""The docs site as a person opens it: its front page in headless Chromium.

scripts/docs.sh (make docs) builds the site first; these tests read what it built, so run them
through it. The front page is the collection's index (antsibull-docs --squash-hierarchy): its DOM,
as Chromium renders it, must link every module and role of this tree, every guide of
docs/docsite/extra-docs.yml and the changelog; and its screenshot, kept as build/docs/index.png for
people to look at, must be a real rendering of the page at the size asked: decoded here (a small
PNG reader; Pillow is not among the project's requirements) and found neither blank nor one colour.

Chromium runs with a proxy on a closed loopback port and every host name unresolvable, so the page
(a file://) can reach nothing beyond this machine, and with Google's background services off.
"""

import html.parser
import shutil
import struct
import subprocess
import tempfile
import zlib

import pytest
import yaml

from helpers import TOP

BUILD = TOP / "build" / "docs"
INDEX = BUILD / "site" / "build" / "html" / "index.html"
SCREENSHOT = BUILD / "index.png"
WIDTH, HEIGHT = 1280, 1400


@pytest.fixture(scope="module")
def index():
    if not INDEX.is_file():
        pytest.fail("%s is missing: build the site with make docs (scripts/docs.sh), which runs these tests" % INDEX)
    return INDEX


def chromium(*args, timeout=120):
    """Run headless Chromium on a throwaway profile; its stdout."""
    binary = shutil.which("chromium")
    assert binary, "chromium is not installed (scripts/docs.sh installs Debian's package)"
    with tempfile.TemporaryDirectory(prefix="podkit-docs-chromium-") as profile:
        proc = subprocess.run(
            [binary, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
             "--user-data-dir=%s" % profile, "--disable-background-networking", "--disable-component-update",
             "--disable-sync", "--disable-domain-reliability", "--no-pings", "--disable-dev-shm-usage",
             "--proxy-server=127.0.0.1:9", "--host-resolver-rules=MAP * ~NOTFOUND"] + list(args),
            capture_output=True, text=True, timeout=timeout, check=False)
    assert proc.returncode == 0, "chromium exited %d: %s" % (proc.returncode, proc.stderr[-2000:])
    return proc.stdout


class Links(html.parser.HTMLParser):
    """Every <a href> of the page's main content (the sidebar repeats the toctree), with its text."""

    def __init__(self):
        super().__init__()
        self.links = []
        self._content_depth = 0
        self._href = None
        self._text = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if self._content_depth:
            self._content_depth += 1
        elif attrs.get("itemprop") == "articleBody":
            self._content_depth = 1
        if self._content_depth and tag == "a" and attrs.get("href"):
            self._href, self._text = attrs["href"], []

    def handle_endtag(self, tag):
        if self._content_depth and tag == "a" and self._href is not None:
            self.links.append((self._href, " ".join("".join(self._text).split())))
            self._href = None
        if self._content_depth:
            self._content_depth -= 1

    def handle_data(self, data):
        if self._href is not None:
            self._text.append(data)


def content_links(dom):
    """{page linked from the main content: the link's text}; in-page anchors left out."""
    parser = Links()
    parser.feed(dom)
    return dict((href.split("#", 1)[0], text) for href, text in parser.links if not href.startswith("#"))


@pytest.fixture(scope="module")
def dom(index):
    return chromium("--dump-dom", index.as_uri())


def test_the_front_page_links_every_module_of_this_tree(dom):
    modules = sorted(p.stem for p in (TOP / "plugins" / "modules").glob("*.py") if p.stem != "__init__")
    assert len(modules) >= 6, modules
    links = content_links(dom)
    for name in modules:
        href = "%s_module.html" % name
        assert href in links, "the front page does not link %s (links: %s)" % (href, sorted(links))
        assert links[href].startswith(name), (href, links[href])


def test_the_front_page_links_every_role_the_guides_and_the_changelog(dom):
    links = content_links(dom)
    roles = sorted(p.name for p in (TOP / "roles").iterdir() if (p / "meta" / "argument_specs.yml").is_file())
    assert roles, "no role found"
    for name in roles:
        assert "%s_role.html" % name in links, (name, sorted(links))
    extra = yaml.safe_load((TOP / "docs" / "docsite" / "extra-docs.yml").read_text())
    guides = [entry for section in extra["sections"] for entry in section["toctree"]]
    assert len(guides) >= 5, guides
    for guide in guides:
        assert "docsite/%s.html" % guide in links, (guide, sorted(links))
    # The changelog (docs/docsite/config.yml) has a page; the index links it once there is a release
    # to show (a page without a release has no title, so no link).
    changes = yaml.safe_load((TOP / "changelogs" / "changelog.yaml").read_text())
    if changes.get("releases"):
        assert "changelog.html" in links, sorted(links)
    else:
        assert "is empty" in (INDEX.parent / "changelog.html").read_text()


# --- a small PNG reader: 8-bit truecolour or greyscale, with or without alpha, not interlaced ---

_CHANNELS = {0: 1, 2: 3, 4: 2, 6: 4}


def _paeth(a, b, c):
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    if pa <= pb and pa <= pc:
        return a
    return b if pb <= pc else c


def read_png(data):
    """(width, height, channels, rows): rows as bytes of unfiltered samples, one per scanline."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, header = 8, [], None
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        crc = struct.unpack(">I", data[pos + 8 + length:pos + 12 + length])[0]
        assert zlib.crc32(kind + body) & 0xFFFFFFFF == crc, "bad CRC in chunk %r" % kind
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat.append(body)
        elif kind == b"IEND":
            break
        pos += 12 + length
    assert header, "no IHDR chunk"
    width, height, depth, colour, _compression, _filter, interlace = header
    assert depth == 8 and colour in _CHANNELS and interlace == 0, "unsupported PNG layout %r" % (header,)
    channels = _CHANNELS[colour]
    stride = width * channels
    raw = zlib.decompress(b"".join(idat))
    assert len(raw) == height * (stride + 1), "the image data does not match its size"
    rows, previous = [], bytearray(stride)
    for y in range(height):
        kind = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        if kind == 1:
            for i in range(channels, stride):
                line[i] = (line[i] + line[i - channels]) & 0xFF
        elif kind == 2:
            line = bytearray((x + b) & 0xFF for x, b in zip(line, previous))
        elif kind == 3:
            for i in range(stride):
                left = line[i - channels] if i >= channels else 0
                line[i] = (line[i] + ((left + previous[i]) >> 1)) & 0xFF
        elif kind == 4:
            for i in range(stride):
                left = line[i - channels] if i >= channels else 0
                corner = previous[i - channels] if i >= channels else 0
                line[i] = (line[i] + _paeth(left, previous[i], corner)) & 0xFF
        else:
            assert kind == 0, "unknown filter type %d in row %d" % (kind, y)
        rows.append(bytes(line))
        previous = line
    return width, height, channels, rows


def write_png(width, height, pixels, filters):
    """An RGB PNG of ``pixels`` (rows of (r, g, b)), row y filtered with filters[y], encoded here
    straight from the PNG specification's filter definitions, to check the reader against."""
    out, previous = bytearray(), [0] * (width * 3)
    for y, row in enumerate(pixels):
        line = [sample for pixel in row for sample in pixel]
        kind = filters[y]
        encoded = []
        for i, x in enumerate(line):
            a = line[i - 3] if i >= 3 else 0
            b = previous[i]
            c = previous[i - 3] if i >= 3 else 0
            predictor = [0, a, b, (a + b) // 2, _paeth(a, b, c)][kind]
            encoded.append((x - predictor) % 256)
        out.append(kind)
        out.extend(encoded)
        previous = line

    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(bytes(out))) + chunk(b"IEND", b""))


def test_the_png_reader_undoes_every_filter_type():
    width = 7
    pixels = [[((x * 37 + y * 11) % 256, (x * x * 5 + y) % 256, (255 - x * 29 - y * 13) % 256) for x in range(width)]
              for y in range(10)]
    filters = [0, 1, 2, 3, 4, 4, 3, 2, 1, 0]
    got_width, got_height, channels, rows = read_png(write_png(width, len(pixels), pixels, filters))
    assert (got_width, got_height, channels) == (width, len(pixels), 3)
    assert rows == [bytes(sample for pixel in row for sample in pixel) for row in pixels]


def colours(width, channels, rows):
    """How many pixels of each colour (alpha left out)."""
    counts = {}
    colour_bytes = min(channels, 3)
    for row in rows:
        for x in range(width):
            key = row[x * channels:x * channels + colour_bytes]
            counts[key] = counts.get(key, 0) + 1
    return counts


def test_the_screenshot_is_a_real_rendering_of_the_front_page(index):
    if SCREENSHOT.exists():
        SCREENSHOT.unlink()
    chromium("--window-size=%d,%d" % (WIDTH, HEIGHT), "--screenshot=%s" % SCREENSHOT, index.as_uri())
    assert SCREENSHOT.is_file(), "chromium wrote no screenshot"
    width, height, channels, rows = read_png(SCREENSHOT.read_bytes())
    assert (width, height) == (WIDTH, HEIGHT), "the screenshot is %dx%d, the window %dx%d" % (width, height, WIDTH, HEIGHT)
    counts = colours(width, channels, rows)
    total = width * height
    commonest = max(counts.values())
    # A page of text on the theme's light background beside its dark navigation: many colours (the
    # text's anti-aliasing) and no single colour covering nearly everything, as a blank page would.
    assert len(counts) > 50, "only %d colours: the screenshot looks blank" % len(counts)
    assert commonest < 0.9 * total, "one colour covers %.0f%% of the screenshot" % (100.0 * commonest / total)
    # Something is drawn in both halves: the navigation on the left, the module list on the right.
    for left in (0, width // 2):
        half = set()
        for row in rows[::20]:
            for x in range(left, left + width // 2, 4):
                half.add(row[x * channels:x * channels + 3])
        assert len(half) > 10, "the %s half of the screenshot is almost one colour" % ("left" if left == 0 else "right")
