//! `rapport-soak-plot SAMPLES.csv OUT.svg [TITLE]`: the soak's samples (written by
//! `rapport-testbed --samples`) as an SVG of resident memory and store sizes against
//! simulated months (docs/soak.svg).

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [csv, out, rest @ ..] = args.as_slice() else {
        eprintln!("usage: rapport-soak-plot SAMPLES.csv OUT.svg [TITLE]");
        return std::process::ExitCode::FAILURE;
    };
    let title = rest.first().map_or("rapport soak", String::as_str);
    let result = std::fs::read_to_string(csv)
        .map_err(|e| format!("{csv}: {e}"))
        .and_then(|text| {
            rapport_testbed::soak::Sample::parse_csv(&text).map_err(|e| format!("{csv}: {e}"))
        })
        .and_then(|samples| {
            std::fs::write(out, rapport_testbed::soak::svg(&samples, title))
                .map_err(|e| format!("{out}: {e}"))
        });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rapport-soak-plot: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
