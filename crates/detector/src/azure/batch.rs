//! Whole-series methods behind the Azure-compatible API: period detection, a robust
//! trend + seasonal decomposition, spectral-residual saliency (Ren et al., KDD 2019) and
//! a windowed change-point statistic. All functions take a regular, gap-free series.

use rustfft::FftPlanner;
use rustfft::num_complex::Complex;

/// Detects the dominant period by autocorrelation of the detrended series; 0 if none is
/// clear (peak autocorrelation below 0.3, or fewer than three cycles in the series).
pub fn detect_period(x: &[f64]) -> usize {
    let n = x.len();
    if n < 12 {
        return 0;
    }
    let d = detrend(x);
    let acf = autocorrelation(&d);
    let max_lag = n / 3;
    let mut best: Option<(usize, f64)> = None;
    for lag in 2..max_lag.max(2) {
        if lag + 1 >= acf.len() {
            break;
        }
        let (a, b, c) = (acf[lag - 1], acf[lag], acf[lag + 1]);
        if b >= a && b >= c && b >= 0.3 && best.is_none_or(|(_, v)| b > v) {
            best = Some((lag, b));
        }
    }
    let Some((lag, peak)) = best else { return 0 };
    // The smallest lag whose peak is nearly as strong: multiples of the true period are
    // peaks too.
    for l in 2..lag {
        let (a, b, c) = (acf[l - 1], acf[l], acf[l + 1]);
        if b >= a && b >= c && b >= 0.9 * peak && lag % l <= 1 {
            return l;
        }
    }
    lag
}

fn detrend(x: &[f64]) -> Vec<f64> {
    let n = x.len() as f64;
    let mean_t = (n - 1.0) / 2.0;
    let mean_x = x.iter().sum::<f64>() / n;
    let (mut sxy, mut sxx) = (0.0, 0.0);
    for (i, v) in x.iter().enumerate() {
        let dt = i as f64 - mean_t;
        sxy += dt * (v - mean_x);
        sxx += dt * dt;
    }
    let slope = if sxx > 0.0 { sxy / sxx } else { 0.0 };
    x.iter().enumerate().map(|(i, v)| v - mean_x - slope * (i as f64 - mean_t)).collect()
}

/// Normalised autocorrelation (lag 0 = 1) by FFT with zero padding.
fn autocorrelation(d: &[f64]) -> Vec<f64> {
    let n = d.len();
    let m = (2 * n).next_power_of_two();
    let mut buf: Vec<Complex<f64>> = d.iter().map(|v| Complex::new(*v, 0.0)).collect();
    buf.resize(m, Complex::new(0.0, 0.0));
    let mut planner = FftPlanner::new();
    planner.plan_fft_forward(m).process(&mut buf);
    for c in &mut buf {
        *c = Complex::new(c.norm_sqr(), 0.0);
    }
    planner.plan_fft_inverse(m).process(&mut buf);
    let zero = buf[0].re;
    if zero <= 0.0 {
        return vec![0.0; n];
    }
    buf.iter().take(n).map(|c| c.re / zero).collect()
}

fn median(v: &mut [f64]) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    let mid = v.len() / 2;
    v.select_nth_unstable_by(mid, f64::total_cmp);
    let hi = v[mid];
    if v.len() % 2 == 1 {
        hi
    } else {
        let lo = v[..mid].iter().copied().fold(f64::NEG_INFINITY, f64::max);
        0.5 * (lo + hi)
    }
}

/// A robust model of the series: expected value per point and the noise scale.
#[derive(Debug, Clone)]
pub struct Decomposition {
    pub expected: Vec<f64>,
    pub seasonal: Vec<f64>,
    pub trend: Vec<f64>,
    /// Robust noise scale of the residuals (1.4826 × MAD).
    pub scale: f64,
}

/// Trend (rolling median) plus seasonal profile (median per phase), robust to the
/// anomalies it is meant to expose.
pub fn decompose(x: &[f64], period: usize) -> Decomposition {
    let n = x.len();
    let mut seasonal = vec![0.0; n];
    if period >= 2 && n >= 2 * period {
        // Rough trend: centred moving average over one period (prefix sums).
        let mut prefix = vec![0.0; n + 1];
        for i in 0..n {
            prefix[i + 1] = prefix[i] + x[i];
        }
        let half = period / 2;
        let rough: Vec<f64> = (0..n)
            .map(|i| {
                let lo = i.saturating_sub(half);
                let hi = (i + half + 1).min(n);
                (prefix[hi] - prefix[lo]) / (hi - lo) as f64
            })
            .collect();
        let mut profile = vec![0.0; period];
        let mut bucket = Vec::with_capacity(n / period + 1);
        for (phase, slot) in profile.iter_mut().enumerate() {
            bucket.clear();
            bucket.extend((phase..n).step_by(period).map(|i| x[i] - rough[i]));
            *slot = median(&mut bucket);
        }
        let mean = profile.iter().sum::<f64>() / period as f64;
        for (i, s) in seasonal.iter_mut().enumerate() {
            *s = profile[i % period] - mean;
        }
    }
    let deseason: Vec<f64> = x.iter().zip(&seasonal).map(|(v, s)| v - s).collect();
    let w = (n / 4).clamp(1, 10);
    let mut window = Vec::with_capacity(2 * w + 1);
    let trend: Vec<f64> = (0..n)
        .map(|i| {
            window.clear();
            window.extend_from_slice(&deseason[i.saturating_sub(w)..(i + w + 1).min(n)]);
            median(&mut window)
        })
        .collect();
    let expected: Vec<f64> = trend.iter().zip(&seasonal).map(|(t, s)| t + s).collect();
    let mut resid: Vec<f64> = x.iter().zip(&expected).map(|(v, e)| (v - e).abs()).collect();
    let scale = robust_scale(&mut resid, x);
    Decomposition { expected, seasonal, trend, scale }
}

/// 1.4826 × median absolute residual, falling back to the mean absolute residual when more
/// than half the residuals are zero, with a floor relative to the series' magnitude.
fn robust_scale(abs_resid: &mut [f64], x: &[f64]) -> f64 {
    let mean_abs = abs_resid.iter().sum::<f64>() / abs_resid.len().max(1) as f64;
    let mad = 1.4826 * median(abs_resid);
    let typical = x.iter().map(|v| v.abs()).sum::<f64>() / x.len().max(1) as f64;
    let floor = 1e-9 + 1e-6 * typical;
    if mad > floor { mad } else { (1.2533 * mean_abs).max(floor) }
}

/// Spectral-residual saliency score per point (Ren et al., KDD 2019): the series is
/// extended by a few extrapolated points, its log amplitude spectrum minus its local
/// average gives the "spectral residual", transformed back it highlights points that do
/// not fit the series' regular structure. Score = (saliency − local mean) / local mean.
pub fn spectral_residual(x: &[f64]) -> Vec<f64> {
    let n = x.len();
    if n < 4 {
        return vec![0.0; n];
    }
    const EXTEND: usize = 5;
    const GRADIENT_POINTS: usize = 5;
    const AMP_WINDOW: usize = 3;
    const SCORE_WINDOW: usize = 21;
    let m = GRADIENT_POINTS.min(n - 1);
    let last = x[n - 1];
    let grad = (1..=m).map(|i| (last - x[n - 1 - i]) / i as f64).sum::<f64>() / m as f64;
    let mut ext: Vec<f64> = x.to_vec();
    let next = x[n - 1 - m] + grad * m as f64;
    ext.extend(std::iter::repeat_n(next, EXTEND));
    let len = ext.len();
    let mut buf: Vec<Complex<f64>> = ext.iter().map(|v| Complex::new(*v, 0.0)).collect();
    let mut planner = FftPlanner::new();
    planner.plan_fft_forward(len).process(&mut buf);
    let amp: Vec<f64> = buf.iter().map(|c| c.norm()).collect();
    let log_amp: Vec<f64> = amp.iter().map(|a| (a + 1e-12).ln()).collect();
    let avg = moving_average(&log_amp, AMP_WINDOW);
    for (i, c) in buf.iter_mut().enumerate() {
        let residual = log_amp[i] - avg[i];
        let scale = if amp[i] > 0.0 { residual.exp() / amp[i] } else { 0.0 };
        *c *= scale;
    }
    planner.plan_fft_inverse(len).process(&mut buf);
    let sal: Vec<f64> = buf.iter().map(|c| c.norm() / len as f64).collect();
    let local = trailing_average(&sal, SCORE_WINDOW);
    sal.iter().zip(&local).take(n).map(|(s, l)| if *l > 1e-12 { (s - l) / l } else { 0.0 }).collect()
}

fn moving_average(v: &[f64], w: usize) -> Vec<f64> {
    let n = v.len();
    let half = w / 2;
    let mut prefix = vec![0.0; n + 1];
    for i in 0..n {
        prefix[i + 1] = prefix[i] + v[i];
    }
    (0..n)
        .map(|i| {
            let lo = i.saturating_sub(half);
            let hi = (i + half + 1).min(n);
            (prefix[hi] - prefix[lo]) / (hi - lo) as f64
        })
        .collect()
}

fn trailing_average(v: &[f64], w: usize) -> Vec<f64> {
    let mut out = Vec::with_capacity(v.len());
    let mut sum = 0.0;
    for i in 0..v.len() {
        sum += v[i];
        if i >= w {
            sum -= v[i - w];
        }
        out.push(sum / (i + 1).min(w) as f64);
    }
    out
}

/// Windowed mean-difference statistic for change points: for each point, the difference
/// of the means of the `w` points after and before it, in units of its standard error
/// (noise from successive differences, so trends and steps do not inflate it).
pub fn change_statistic(x: &[f64], w: usize) -> Vec<f64> {
    let n = x.len();
    let mut out = vec![0.0; n];
    if n < 2 * w || w == 0 {
        return out;
    }
    let mut diffs: Vec<f64> = x.windows(2).map(|p| (p[1] - p[0]).abs()).collect();
    let typical = x.iter().map(|v| v.abs()).sum::<f64>() / n as f64;
    let sigma = (1.4826 * median(&mut diffs) / std::f64::consts::SQRT_2).max(1e-9 + 1e-6 * typical);
    let se = sigma * (2.0 / w as f64).sqrt();
    let mut prefix = vec![0.0; n + 1];
    for i in 0..n {
        prefix[i + 1] = prefix[i] + x[i];
    }
    for (i, o) in out.iter_mut().enumerate().take(n - w + 1).skip(w) {
        let left = (prefix[i] - prefix[i - w]) / w as f64;
        let right = (prefix[i + w] - prefix[i]) / w as f64;
        *o = (right - left) / se;
    }
    out
}
