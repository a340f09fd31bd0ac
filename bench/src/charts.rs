//! SVG charts of a run (plotters' SVG backend, no font files needed): for each profile, every
//! engine's median relative to the best engine on each workload, and the same for peak RSS.

use std::path::Path;

use plotters::prelude::*;

use crate::engine::Result;
use crate::plan::Results;
use crate::report::{self, Row};

const COLORS: &[RGBColor] = &[
    RGBColor(214, 39, 40),   // strata: red
    RGBColor(31, 119, 180),  // blue
    RGBColor(44, 160, 44),   // green
    RGBColor(255, 127, 14),  // orange
    RGBColor(148, 103, 189), // purple
    RGBColor(140, 86, 75),   // brown
    RGBColor(127, 127, 127), // grey
];

pub fn write(dir: &Path, results: &Results) -> Result<()> {
    std::fs::create_dir_all(dir)?;
    let mut engines: Vec<String> = Vec::new();
    for s in &results.samples {
        if !engines.contains(&s.engine) {
            engines.push(s.engine.clone());
        }
    }
    // Strata first, the peers in their run order.
    engines.sort_by_key(|e| e != "strata");
    let all = report::rows(&results.samples, |s| Some(s.value));
    let rss = report::rss_rows(&results.samples);
    for profile in ["default", "cache64"] {
        let sel: Vec<Row> = all.iter().filter(|r| r.profile == profile).cloned().collect();
        if !sel.is_empty() {
            let title = format!(
                "Median relative to the best engine per workload (profile {profile}; 1 = best, longer is better)"
            );
            relative_chart(&dir.join(format!("peers-{profile}.svg")), &title, &sel, &engines)?;
        }
    }
    let sel: Vec<Row> = rss.iter().filter(|r| r.profile == "default").cloned().collect();
    if !sel.is_empty() {
        relative_chart(
            &dir.join("peers-rss.svg"),
            "Peak RSS per workload: smallest / engine's (profile default; 1 = smallest, longer is better)",
            &sel,
            &engines,
        )?;
    }
    Ok(())
}

/// Horizontal grouped bars: one band per workload, one bar per engine, its length the
/// engine's median relative to the best engine's.
fn relative_chart(path: &Path, title: &str, rows: &[Row], engines: &[String]) -> Result<()> {
    let slots = engines.len() + 1; // a gap after each band
    let total = (rows.len() * slots) as u32;
    let height = 120 + total * 9;
    let root = SVGBackend::new(path, (1100, height)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(170)
        .build_cartesian_2d(0f64..1.3f64, (0u32..total).into_segmented())?;
    // The y axis grows upwards: the first workload's band is at the top, and within a band
    // the first engine (Strata) is the top bar.
    let slot_of = |band: usize, engine: usize| -> u32 {
        ((rows.len() - 1 - band) * slots + (engines.len() - engine)) as u32
    };
    let label_at = |slot: u32| -> Option<String> {
        let band = rows.len() - 1 - (slot as usize) / slots;
        let within = (slot as usize) % slots;
        (within == engines.len().div_ceil(2)).then(|| rows.get(band).map(|r| r.workload.clone()))?
    };
    chart
        .configure_mesh()
        .disable_y_mesh()
        .y_labels(total as usize)
        .y_label_formatter(&|v| match v {
            SegmentValue::CenterOf(slot) => label_at(*slot).unwrap_or_default(),
            _ => String::new(),
        })
        .x_desc("relative to the best engine")
        .x_labels(14)
        .x_label_formatter(&|x| format!("{x:.1}"))
        .draw()?;
    for (e, engine) in engines.iter().enumerate() {
        let color = COLORS[e % COLORS.len()];
        let bars: Vec<Rectangle<(f64, SegmentValue<u32>)>> = rows
            .iter()
            .enumerate()
            .filter_map(|(band, row)| {
                let rel = row.relative(engine)?;
                let slot = slot_of(band, e);
                Some(Rectangle::new(
                    [
                        (0.0, SegmentValue::Exact(slot)),
                        (rel.min(1.05), SegmentValue::Exact(slot + 1)),
                    ],
                    color.filled(),
                ))
            })
            .collect();
        chart
            .draw_series(bars)?
            .label(engine.as_str())
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], color.filled()));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}
