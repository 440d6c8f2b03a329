//! What the two profiles' charts share before any drawing: the error a chart is refused or
//! fails with, and the bounds of a picture's size.

use thiserror::Error;

/// The largest picture drawn, in pixels.
pub const MAX_SIZE: (u32, u32) = (8000, 4000);

#[derive(Debug, Error)]
pub enum ChartError {
    #[error("a chart is {}×{} to {}×{} pixels, not {width}×{height}", min.0, min.1, MAX_SIZE.0, MAX_SIZE.1)]
    Size { width: u32, height: u32, min: (u32, u32) },
    #[error("drawing the chart failed: {0}")]
    Draw(String),
    /// `allowed` says which formats are, e.g. "png or svg".
    #[error("export format must be {allowed}, not {got:?}")]
    Format { got: String, allowed: &'static str },
    #[error("writing {0}")]
    Write(String),
}

/// A drawing backend's error, as a chart error.
pub fn draw_err<E: std::fmt::Display>(e: E) -> ChartError {
    ChartError::Draw(e.to_string())
}

/// Refuses a picture smaller than `min` or larger than [`MAX_SIZE`].
pub fn check_size(width: u32, height: u32, min: (u32, u32)) -> Result<(), ChartError> {
    if !(min.0..=MAX_SIZE.0).contains(&width) || !(min.1..=MAX_SIZE.1).contains(&height) {
        return Err(ChartError::Size { width, height, min });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_outside_the_bounds_are_refused_naming_them() {
        assert!(check_size(640, 200, (120, 60)).is_ok());
        assert!(check_size(8000, 4000, (120, 60)).is_ok());
        for (w, h) in [(119, 200), (640, 59), (8001, 200), (640, 4001), (0, 0), (u32::MAX, u32::MAX)] {
            let e = check_size(w, h, (120, 60)).unwrap_err();
            assert!(matches!(e, ChartError::Size { width, height, .. } if (width, height) == (w, h)));
            assert!(e.to_string().contains("120×60 to 8000×4000"), "{e}");
        }
        let f = ChartError::Format { got: "gif".into(), allowed: "png or svg" };
        assert_eq!(f.to_string(), "export format must be png or svg, not \"gif\"");
    }
}
