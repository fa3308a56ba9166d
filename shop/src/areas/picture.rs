//! A picture for every product, drawn as SVG from its category and name: the shop needs no image
//! files, no upload and no network, and the same product always looks the same on every replica.
//!
//! The category picks the colours and the motif (a book's spine, a shirt, a screen, …); the name
//! picks the motif's variation and gives the label. Every text is XML-escaped; the catalog serves
//! it with the `Content-Security-Policy` of everything that is not a page (`default-src 'none'`:
//! an SVG opened on its own is a document, and this one runs nothing).

use crate::domain::Product;

/// FNV-1a: a stable hash (the same on every replica and every run, unlike `DefaultHasher`).
fn fnv(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // not allowed in XML at all: left out
            c if c.is_control() || c == '\u{FFFE}' || c == '\u{FFFF}' => {}
            c => out.push(c),
        }
    }
    out
}

/// The motif of a category, drawn in a 320×240 box around its centre (160, 105).
fn motif(category: &str, v: u64, ink: &str) -> String {
    let w = 40 + (v % 30) as i64; // a little variation per product
    match category {
        "Books" => format!(
            r#"<rect x="{x}" y="55" width="{w}" height="100" rx="4" fill="{ink}"/><rect x="{x2}" y="62" width="34" height="93" rx="4" fill="{ink}" opacity=".6"/><rect x="{x3}" y="48" width="30" height="107" rx="4" fill="{ink}" opacity=".8"/>"#,
            x = 160 - w,
            x2 = 164,
            x3 = 202,
        ),
        "Clothing" => format!(
            r#"<path d="M120 60 l25 -12 q15 14 30 0 l25 12 l18 30 l-22 12 l-8 -14 v72 h-56 v-72 l-8 14 l-22 -12 z" fill="{ink}"/>"#
        ),
        "Electronics" => format!(
            r#"<rect x="{x}" y="55" width="{ww}" height="80" rx="8" fill="{ink}"/><rect x="{xi}" y="63" width="{wi}" height="64" rx="4" fill="white" opacity=".35"/><rect x="140" y="140" width="40" height="8" rx="3" fill="{ink}"/>"#,
            x = 160 - w - 20,
            ww = 2 * (w + 20),
            xi = 168 - w - 20,
            wi = 2 * (w + 20) - 16,
        ),
        "Garden" => format!(
            r#"<path d="M160 150 v-60" stroke="{ink}" stroke-width="6"/><ellipse cx="140" cy="95" rx="{w2}" ry="12" fill="{ink}" transform="rotate(-30 140 95)"/><ellipse cx="180" cy="80" rx="{w2}" ry="12" fill="{ink}" opacity=".75" transform="rotate(30 180 80)"/><rect x="132" y="140" width="56" height="22" rx="4" fill="{ink}" opacity=".8"/>"#,
            w2 = w / 2 + 6,
        ),
        "Home & Kitchen" => format!(
            r#"<path d="M118 80 h84 v50 q0 22 -22 22 h-40 q-22 0 -22 -22 z" fill="{ink}"/><path d="M202 92 q24 0 24 18 q0 18 -24 18" fill="none" stroke="{ink}" stroke-width="7"/><path d="M140 70 q6 -12 0 -22 M160 70 q6 -12 0 -22 M180 70 q6 -12 0 -22" stroke="{ink}" stroke-width="4" fill="none" opacity=".6"/>"#
        ),
        "Office Supplies" => format!(
            r#"<rect x="120" y="50" width="80" height="104" rx="4" fill="{ink}" opacity=".35"/><path d="M132 72 h56 M132 88 h56 M132 104 h{l}" stroke="{ink}" stroke-width="5"/><path d="M205 60 l12 12 l-50 74 l-16 5 l3 -17 z" fill="{ink}"/>"#,
            l = 20 + w / 2,
        ),
        "Sports & Outdoors" => format!(
            r#"<circle cx="160" cy="100" r="{r}" fill="{ink}"/><path d="M{a} 100 h{d} M160 {b} v{d}" stroke="white" stroke-width="4" opacity=".5"/><circle cx="160" cy="100" r="{r2}" fill="none" stroke="white" stroke-width="4" opacity=".5"/>"#,
            r = w,
            a = 160 - w,
            b = 100 - w,
            d = 2 * w,
            r2 = w / 2,
        ),
        "Toys & Games" => format!(
            r#"<rect x="112" y="88" width="44" height="44" rx="6" fill="{ink}"/><rect x="164" y="88" width="44" height="44" rx="6" fill="{ink}" opacity=".7"/><rect x="138" y="40" width="44" height="44" rx="6" fill="{ink}" opacity=".85"/><circle cx="134" cy="110" r="5" fill="white"/><circle cx="186" cy="110" r="5" fill="white"/><circle cx="160" cy="62" r="5" fill="white"/>"#
        ),
        _ => format!(r#"<circle cx="160" cy="100" r="{w}" fill="{ink}"/>"#),
    }
}

/// A strong validator of a picture: a hash of its SVG (the same on every replica).
pub fn etag(svg: &str) -> String {
    format!("\"{:016x}\"", fnv(svg))
}

/// The SVG of a product's picture.
pub fn svg(p: &Product) -> String {
    // the seed catalog's categories get hues far apart; any other, one from its name
    let hue = match p.category.as_str() {
        "Books" => 200,
        "Clothing" => 170,
        "Electronics" => 230,
        "Garden" => 110,
        "Home & Kitchen" => 265,
        "Office Supplies" => 30,
        "Sports & Outdoors" => 5,
        "Toys & Games" => 320,
        other => fnv(other) % 360,
    };
    let v = fnv(&p.name);
    let shade = 88 + (v % 6); // background lightness, a little per product
    let bg = format!("hsl({hue} 45% {shade}%)");
    let ink = format!("hsl({hue} 45% 38%)");
    let mut label: String = p.name.chars().take(28).collect();
    if p.name.chars().count() > 28 {
        label.push('…');
    }
    format!(
        concat!(
            r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 320 240" width="320" height="240" role="img" aria-label="{name}">"#,
            r#"<title>{name}</title><rect width="320" height="240" fill="{bg}"/>{motif}"#,
            r#"<text x="160" y="200" text-anchor="middle" font-family="system-ui, sans-serif" font-size="17" fill="{ink}">{label}</text>"#,
            r#"<text x="160" y="222" text-anchor="middle" font-family="system-ui, sans-serif" font-size="12" fill="{ink}" opacity=".8">{category}</text></svg>"#
        ),
        name = xml_escape(&p.name),
        bg = bg,
        motif = motif(&p.category, v, &ink),
        ink = ink,
        label = xml_escape(&label),
        category = xml_escape(&p.category),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ProductId;

    fn product(name: &str, category: &str) -> Product {
        Product {
            id: ProductId(1),
            sku: "S".into(),
            name: name.into(),
            description: String::new(),
            price_cents: 100,
            currency: "EUR".into(),
            stock: 1,
            category: category.into(),
        }
    }

    #[test]
    fn text_is_escaped_and_the_picture_is_stable() {
        let s = svg(&product("<script>alert(1)</script> & \"co\"", "Books"));
        assert!(!s.contains("<script") && s.contains("&lt;script&gt;") && s.contains("&amp;"), "{s}");
        assert_eq!(s, svg(&product("<script>alert(1)</script> & \"co\"", "Books")));
        assert_ne!(svg(&product("A", "Books")), svg(&product("A", "Garden")));
    }

    #[test]
    fn every_category_has_a_motif_and_long_names_are_cut() {
        for c in [
            "Books",
            "Clothing",
            "Electronics",
            "Garden",
            "Home & Kitchen",
            "Office Supplies",
            "Sports & Outdoors",
            "Toys & Games",
            "Other",
        ] {
            let s = svg(&product(&"n".repeat(60), c));
            assert!(s.starts_with("<svg") && s.ends_with("</svg>"), "{c}");
            assert!(s.contains(&format!("{}…", "n".repeat(28))), "{c}");
        }
    }
}
