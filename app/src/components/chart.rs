//! A line chart of one vital sign on a `<canvas>`, drawn by `plotters` (plotters-canvas).
//! Redrawn whenever its data signal changes.

use crate::format;
use leptos::html::Canvas;
use leptos::prelude::*;
use plotters::prelude::*;
use plotters_canvas::CanvasBackend;

/// One line: a label and (time ms, value) points sorted by time.
pub type Line = (String, Vec<(f64, f64)>);

const COLORS: [RGBColor; 3] = [
    RGBColor(0x1f, 0x6f, 0xb5),
    RGBColor(0xc0, 0x39, 0x2b),
    RGBColor(0x27, 0xae, 0x60),
];

fn draw(canvas: web_sys::HtmlCanvasElement, unit: &str, lines: &[Line]) -> Result<(), String> {
    let backend = CanvasBackend::with_canvas_object(canvas).ok_or("no 2d context")?;
    let root = backend.into_drawing_area();
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let points = lines.iter().flat_map(|(_, p)| p.iter());
    let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for &(x, y) in points {
        x0 = x0.min(x);
        x1 = x1.max(x);
        y0 = y0.min(y);
        y1 = y1.max(y);
    }
    if x0 > x1 {
        root.draw(&Text::new(
            "no readings yet",
            (20, 20),
            ("sans-serif", 14).into_font(),
        ))
        .map_err(|e| e.to_string())?;
        return root.present().map_err(|e| e.to_string());
    }
    // At least ten minutes wide, so the time labels differ.
    if x1 - x0 < 600_000.0 {
        let mid = (x0 + x1) / 2.0;
        x0 = mid - 300_000.0;
        x1 = mid + 300_000.0;
    }
    let pad = ((y1 - y0) * 0.1).max(1.0);
    let (y0, y1) = (y0 - pad, y1 + pad);
    let mut chart = ChartBuilder::on(&root)
        .margin(8)
        .x_label_area_size(24)
        .y_label_area_size(56)
        .build_cartesian_2d(x0..x1, y0..y1)
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .x_labels(6)
        .y_labels(5)
        .x_label_formatter(&|x| format::clock(*x))
        .y_desc(unit)
        .draw()
        .map_err(|e| e.to_string())?;
    for (i, (label, points)) in lines.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        chart
            .draw_series(LineSeries::new(points.iter().copied(), color.stroke_width(2)))
            .map_err(|e| e.to_string())?
            .label(label.as_str())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 14, y)], color));
        // Sparse series (a fresh consent, a slow device) get a dot per reading.
        if points.len() < 40 {
            chart
                .draw_series(points.iter().map(|&p| Circle::new(p, 3, color.filled())))
                .map_err(|e| e.to_string())?;
        }
    }
    if lines.len() > 1 {
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .map_err(|e| e.to_string())?;
    }
    root.present().map_err(|e| e.to_string())
}

#[component]
pub fn Chart(
    #[prop(into)] title: String,
    #[prop(into)] unit: String,
    #[prop(into)] lines: Signal<Vec<Line>>,
) -> impl IntoView {
    let canvas = NodeRef::<Canvas>::new();
    let error = RwSignal::new(None::<String>);
    let unit_for_draw = unit.clone();
    Effect::new(move |_| {
        let lines = lines.get();
        if let Some(el) = canvas.get() {
            error.set(draw(el, &unit_for_draw, &lines).err());
        }
    });
    let count = move || lines.with(|l| l.iter().map(|(_, p)| p.len()).sum::<usize>());
    view! {
        <figure class="chart" data-testid="chart">
            <figcaption>
                <b>{title}</b> " (" {unit} ") · " <span data-testid="chart-points">{count}</span> " readings"
            </figcaption>
            <canvas node_ref=canvas width="560" height="200"></canvas>
            {move || error.get().map(|e| view! { <div class="error">"chart: " {e}</div> })}
        </figure>
    }
}
