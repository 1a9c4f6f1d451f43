//! The HTML report as a person sees it: the paper preset's experiment made tiny, with a
//! branch, `lottery report DIR --html`, the markup read back by an XML parser, and the page
//! rendered by headless Chromium (Debian's `chromium`, installed when missing and running as
//! root) to a PNG in which every plot's box must hold drawing — lines in colour, not a blank
//! square.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{lottery, mnist_dir, stderr, temp};

/// A Chromium on PATH, installed from Debian when missing and we are root.
fn chromium() -> Option<PathBuf> {
    let find = || {
        ["chromium", "chromium-browser", "google-chrome"]
            .iter()
            .find(|b| {
                Command::new(b)
                    .arg("--version")
                    .output()
                    .is_ok_and(|o| o.status.success())
            })
            .map(PathBuf::from)
    };
    if let Some(b) = find() {
        return Some(b);
    }
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    if !root {
        return None;
    }
    let apt = |args: &[&str]| {
        Command::new("apt-get")
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if apt(&["update", "-qq"])
        && apt(&[
            "install",
            "-y",
            "-qq",
            "--no-install-recommends",
            "chromium",
        ])
    {
        find()
    } else {
        None
    }
}

fn headless(browser: &Path) -> Command {
    let mut c = Command::new(browser);
    // No sandbox: tests may run as root, which Chromium's sandbox refuses.
    c.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--hide-scrollbars",
        "--force-device-scale-factor=1",
    ]);
    c
}

/// Each `<svg>`'s box in CSS pixels (left, top, width, height) and the page's height, from a
/// copy of the page with a script that writes them into the DOM Chromium dumps.
fn svg_boxes(browser: &Path, html: &Path, width: u32) -> (Vec<[u32; 4]>, u32) {
    let page = std::fs::read_to_string(html).unwrap();
    let script = "<script>document.addEventListener('DOMContentLoaded',()=>{const r=[...document.querySelectorAll('svg')].map(s=>{const b=s.getBoundingClientRect();return [b.left,b.top+window.scrollY,b.width,b.height].map(Math.round).join(',')});const p=document.createElement('pre');p.id='svg-boxes';p.textContent=r.join(';')+'|'+document.documentElement.scrollHeight;document.body.appendChild(p);});</script>";
    let probe = html.with_extension("probe.html");
    std::fs::write(&probe, page.replace("</body>", &format!("{script}</body>"))).unwrap();
    let o = headless(browser)
        .arg(format!("--window-size={width},1000"))
        .arg("--dump-dom")
        .arg(format!("file://{}", probe.display()))
        .output()
        .unwrap();
    let dom = String::from_utf8_lossy(&o.stdout);
    let start = dom.find("<pre id=\"svg-boxes\">").expect("the probe ran") + 20;
    let text = &dom[start..start + dom[start..].find('<').unwrap()];
    let (boxes, height) = text.split_once('|').unwrap();
    let boxes = boxes
        .split(';')
        .filter(|b| !b.is_empty())
        .map(|b| {
            let v: Vec<u32> = b.split(',').map(|x| x.parse().unwrap()).collect();
            [v[0], v[1], v[2], v[3]]
        })
        .collect();
    (boxes, height.parse().unwrap())
}

/// Decoded RGB(A) pixels of a PNG: (width, height, channels, bytes).
fn decode(path: &Path) -> (u32, u32, usize, Vec<u8>) {
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(path).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    buf.truncate(info.buffer_size());
    (info.width, info.height, info.color_type.samples(), buf)
}

#[test]
fn the_html_report_parses_and_chromium_draws_every_plot() {
    let tmp = temp("html");
    let run = tmp.join("run");
    let (r, data) = (run.to_str().unwrap(), mnist_dir());
    let o = lottery(&[
        "run",
        // The paper preset's experiment (its controls, plots and tables) at a test's length.
        "--preset",
        "lenet-mnist-paper",
        "--model",
        "mlp_20",
        "--iterations",
        "150",
        "--eval-every",
        "50",
        "--levels",
        "2",
        "--data-dir",
        data.to_str().unwrap(),
        "--out",
        r,
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = lottery(&["branch", "signs", r]);
    assert!(o.status.success(), "{}", stderr(&o));
    let html = tmp.join("report.html");
    let o = lottery(&["report", r, "--html", html.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));

    let text = std::fs::read_to_string(&html).unwrap();
    assert!(text.len() < 1 << 20, "{} bytes", text.len());
    let options = roxmltree::ParsingOptions {
        allow_dtd: true,
        ..Default::default()
    };
    let doc =
        roxmltree::Document::parse_with_options(&text, options).expect("the report is well-formed");
    let count = |tag: &str| doc.descendants().filter(|n| n.has_tag_name(tag)).count();
    let svgs = count("svg");
    // accuracy, early stop and learning curves, and the branch's own plots.
    assert!(svgs >= 4, "{svgs} plots");
    assert!(count("table") >= 2, "the level table and the branch's");
    assert!(text.contains("branch signs"), "no branch section");
    assert!(
        doc.descendants()
            .all(|n| n.attribute("src").is_none() && n.attribute("href").is_none()),
        "the page fetches nothing"
    );

    let Some(browser) = chromium() else {
        eprintln!("skipped the rendering: no Chromium, and not root to install Debian's");
        return;
    };
    let width = 1200;
    let (boxes, height) = svg_boxes(&browser, &html, width);
    assert_eq!(boxes.len(), svgs, "Chromium found another number of plots");
    let png = tmp.join("report.png");
    let o = headless(&browser)
        .arg(format!("--window-size={width},{height}"))
        .arg(format!("--screenshot={}", png.display()))
        .arg(format!("file://{}", html.display()))
        .output()
        .unwrap();
    assert!(
        png.is_file(),
        "no screenshot: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let (w, h, channels, pixels) = decode(&png);
    for [left, top, bw, bh] in boxes {
        assert!(bw > 100 && bh > 100, "a plot drawn {bw}×{bh}");
        assert!(left + bw <= w && top + bh <= h, "plot box off the page");
        let (mut inked, mut coloured) = (0usize, 0usize);
        for y in top..top + bh {
            for x in left..left + bw {
                let i = (y as usize * w as usize + x as usize) * channels;
                let (r, g, b) = (pixels[i] as i32, pixels[i + 1] as i32, pixels[i + 2] as i32);
                if r + g + b < 3 * 235 {
                    inked += 1;
                }
                if (r - g).abs().max((g - b).abs()).max((r - b).abs()) > 60 {
                    coloured += 1;
                }
            }
        }
        let area = (bw * bh) as usize;
        assert!(
            inked * 100 > area,
            "the plot at ({left},{top}) is blank: {inked} of {area} pixels inked"
        );
        assert!(
            coloured > 200,
            "the plot at ({left},{top}) has no coloured curve ({coloured} pixels)"
        );
    }
    std::fs::remove_dir_all(&tmp).unwrap();
}
