//! The example scenarios run, and the timelines committed under `docs/` are what the simulator
//! draws today (regenerate them with the command in the failure message).

use std::path::Path;

#[test]
fn every_example_scenario_runs_and_its_committed_timeline_is_current() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let (mut seen, mut drawn) = (0, 0);
    for entry in std::fs::read_dir(root.join("examples/scenarios")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "toml") {
            continue;
        }
        seen += 1;
        let text = std::fs::read_to_string(&path).unwrap();
        let scenario = backwork_simulator::Scenario::from_toml(&text)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let report = backwork_simulator::simulate(&scenario)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert!(
            report.jobs.iter().all(|j| !j.runs.is_empty()),
            "{}",
            report.text()
        );
        let stem = path.file_stem().unwrap().to_string_lossy();
        let svg = root.join("docs").join(format!("{stem}.svg"));
        if !svg.exists() {
            continue; // a fleet scenario: no timeline
        }
        drawn += 1;
        let committed = std::fs::read_to_string(&svg).unwrap_or_default();
        assert!(
            committed == backwork_simulator::svg(&report),
            "{} is stale; regenerate it: cargo run -q -p backwork-cli -- simulate {} --svg {} > /dev/null",
            svg.display(),
            path.display(),
            svg.display()
        );
    }
    assert_eq!(seen, 4, "the example scenarios");
    assert_eq!(drawn, 3, "the three timelines in docs/");
}
