//! Firmware images as the FAQ names them (3.10, 3.17): which board an image is for, and for which
//! model, read from its file name; and whether a pile fits an image (3.17 point 1: "upgrade the
//! same firmware type as the current firmware").
//!
//! The FAQ's G2+ example upgrades two images in order: the ESP32 communication board's
//! `cp.onfly.V1.2@23283e3+48.ws.cp`, then the ST MCU's `XSmart.V2.0.110(M3G31H)@7KW.EVPro.070`.
//! From those names:
//! - a name ending in `.ws.cp` (or starting with `cp.`) is an [`ESP32`] image;
//! - a name ending in `.` and three digits (`.070`) is an ST MCU image, target `st` and those
//!   digits ([`st070`](ST070));
//! - any other name's target is its last extension, lower-cased (`fw.bin`: `bin`), or `any`
//!   when it has none;
//! - a parenthesised code in the name (`(M3G31H)`) names the model the image is built for.

/// The ESP32 communication board's firmware type.
pub const ESP32: &str = "esp32";
/// The ST MCU firmware type of the FAQ's example (`...EVPro.070`).
pub const ST070: &str = "st070";

/// The firmware type an image's file name implies.
pub fn target_from_name(name: &str) -> String {
    let lower = name.to_ascii_lowercase();
    if lower.ends_with(".ws.cp") || lower.starts_with("cp.") {
        return ESP32.to_owned();
    }
    match lower.rsplit_once('.') {
        Some((_, ext)) if ext.len() == 3 && ext.bytes().all(|b| b.is_ascii_digit()) => {
            format!("st{ext}")
        }
        Some((stem, ext))
            if !stem.is_empty()
                && !ext.is_empty()
                && ext.bytes().all(|b| b.is_ascii_alphanumeric()) =>
        {
            ext.to_owned()
        }
        _ => "any".to_owned(),
    }
}

/// The model code an image's file name carries in parentheses (`(M3G31H)`), if any.
pub fn model_from_name(name: &str) -> Option<String> {
    let open = name.find('(')?;
    let close = open + name[open..].find(')')?;
    let code = name[open + 1..close].trim();
    (!code.is_empty()).then(|| code.to_owned())
}

/// Why a pile does not fit an image.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Misfit {
    #[error("the pile has not booted yet: its model and firmware are unknown")]
    NeverBooted,
    #[error("the image is for model {image}; the pile is a {pile}")]
    Model { image: String, pile: String },
}

/// Whether a pile of `pile_model` fits an image built for `image_model` (from the name, or
/// given when the image was stored): the model codes match when one starts with the other,
/// ignoring case and spaces (`M3G31H` is a variant of `M3G3`). An image without a model fits
/// every pile that has booted.
pub fn fits(image_model: Option<&str>, pile_model: Option<&str>) -> Result<(), Misfit> {
    let pile = pile_model.ok_or(Misfit::NeverBooted)?;
    let Some(image) = image_model else {
        return Ok(());
    };
    let norm = |s: &str| -> String {
        s.chars()
            .filter(|c| !c.is_whitespace())
            .collect::<String>()
            .to_ascii_uppercase()
    };
    let (a, b) = (norm(image), norm(pile));
    if a.starts_with(&b) || b.starts_with(&a) {
        Ok(())
    } else {
        Err(Misfit::Model {
            image: image.to_owned(),
            pile: pile.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_faqs_two_images() {
        let esp = "cp.onfly.V1.2@23283e3+48.ws.cp";
        let st = "XSmart.V2.0.110(M3G31H)@7KW.EVPro.070";
        assert_eq!(target_from_name(esp), ESP32);
        assert_eq!(target_from_name(st), ST070);
        assert_eq!(model_from_name(esp), None);
        assert_eq!(model_from_name(st).as_deref(), Some("M3G31H"));
    }

    #[test]
    fn other_names() {
        assert_eq!(target_from_name("fw.bin"), "bin");
        assert_eq!(target_from_name("FW.BIN"), "bin");
        assert_eq!(target_from_name("firmware"), "any");
        assert_eq!(target_from_name(".hidden"), "any");
        assert_eq!(target_from_name("x.MCU.123"), "st123");
        assert_eq!(model_from_name("a()b"), None);
        assert_eq!(model_from_name("a(b"), None);
    }

    #[test]
    fn model_variants_fit() {
        assert_eq!(fits(Some("M3G31H"), Some("M3G3")), Ok(()));
        assert_eq!(fits(Some("m3g3"), Some("M3G31H")), Ok(()));
        assert_eq!(fits(None, Some("Anything")), Ok(()));
        assert_eq!(fits(None, None), Err(Misfit::NeverBooted));
        assert_eq!(
            fits(Some("M3G31H"), Some("M3G2")),
            Err(Misfit::Model {
                image: "M3G31H".into(),
                pile: "M3G2".into()
            })
        );
        assert_eq!(
            fits(Some("M3G31H"), Some("M3G2")).unwrap_err().to_string(),
            "the image is for model M3G31H; the pile is a M3G2"
        );
    }
}
