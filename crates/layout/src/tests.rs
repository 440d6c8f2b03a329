//! Tests of parsing, checking, scaling and lookups, including the shipped layout file.

use super::*;

const SMALL: &str = r#"
lines_per_plant = 2

[[plant]]
number = 1
name = "North"

[[plant]]
number = 7
name = "South"
lines = 3

[[line_machines]]
machine_type = "mill"
count = 3

[[line_machines]]
machine_type = "fan"
count = 2

[[machine_type]]
name = "mill"
life_days = 30

[[machine_type.sensor]]
kind = "TEMP"
count = 2
unit = "°C"
normal_min = 10.0
normal_max = 50.0
nominal = 30.0
noise_sd = 0.5

[[machine_type.sensor]]
kind = "VIB"
count = 1
unit = "mm/s"
normal_min = 0.0
normal_max = 5.0
nominal = 2.0
noise_sd = 0.1
wear_response = 3.0

[[machine_type]]
name = "fan"
life_days = 60

[[machine_type.sensor]]
kind = "SPEED"
count = 1
unit = "rpm"
normal_min = 100.0
normal_max = 2000.0
nominal = 1500.0
noise_sd = 5.0
"#;

fn small(scale: Scale) -> Layout {
    Layout::from_toml(SMALL, &scale).unwrap()
}

/// Applies one text replacement to the small layout and expects an error whose message
/// contains `want`.
#[track_caller]
fn check_error(from: &str, to: &str, scale: Scale, want: &str) -> LayoutError {
    assert!(SMALL.contains(from), "test edits text that is not there: {from}");
    let text = SMALL.replacen(from, to, 1);
    let err = Layout::from_toml(&text, &scale).expect_err("layout should be rejected");
    let message = err.to_string();
    assert!(message.contains(want), "error {message:?} does not mention {want:?}");
    err
}

#[test]
fn shipped_layout_has_five_plants_of_ten_thousand_sensors() {
    let layout = Layout::default_with(&Scale::default()).unwrap();
    assert_eq!(layout.plants().len(), 5);
    assert_eq!(layout.sensor_count(), 50_000);
    for plant in layout.plants() {
        assert_eq!(plant.sensors.len(), 10_000, "{}", plant.id);
        assert_eq!(plant.lines.len(), 10);
        assert_eq!(plant.machines.len(), 670);
        let first = u32::from(plant.number) * PLANT_ID_STRIDE;
        assert_eq!(plant.sensor_ids, first..first + 10_000);
    }
    assert_eq!(layout.gateways().len(), 50);
    let gateway = layout.gateway("P2-L10").unwrap();
    assert_eq!(layout.gateway_sensors(gateway).len(), 1_000);
    assert_eq!(layout.sensors()[0].name, "P1-L01-M001-TEMP1");
    assert_eq!(layout.sensors()[0].id, 1_000_000);
}

#[test]
fn shipped_layout_keeps_healthy_signals_inside_their_normal_band() {
    // Nominal, the full daily swing, the whole load range (idle to full), 3 noise
    // deviations and 2 drift deviations must fit the band, or a healthy machine would
    // look abnormal.
    let layout = Layout::default_with(&Scale::default()).unwrap();
    for machine_type in layout.machine_types() {
        for spec in &machine_type.sensors {
            let load = [-0.75 * spec.load_response, 0.25 * spec.load_response];
            let slack = spec.daily_amplitude + 3.0 * spec.noise_sd + 2.0 * spec.drift_sd;
            let low = spec.nominal + load[0].min(load[1]) - slack;
            let high = spec.nominal + load[0].max(load[1]) + slack;
            assert!(
                spec.normal_min <= low && high <= spec.normal_max,
                "{}.{}: healthy {low:.2}..{high:.2} outside {}..{}",
                machine_type.name,
                spec.kind,
                spec.normal_min,
                spec.normal_max
            );
        }
    }
}

#[test]
fn every_sensor_resolves_both_ways() {
    let layout = Layout::default_with(&Scale::default()).unwrap();
    let mut previous = None;
    for (ix, sensor) in layout.sensors().iter().enumerate() {
        assert_eq!(layout.sensor_id(&sensor.name), Some(sensor.id));
        assert_eq!(layout.sensor_index(sensor.id), Some(ix));
        let info = layout.sensor(sensor.id).unwrap();
        assert!(sensor.name.starts_with(&info.machine.id));
        assert!(info.machine.id.starts_with(&info.line.id));
        assert!(info.line.id.starts_with(&info.plant.id));
        assert!(info.machine.sensor_ids.contains(&sensor.id));
        assert!(info.line.sensor_ids.contains(&sensor.id));
        assert!(previous < Some(sensor.id), "sensor ids must increase");
        previous = Some(sensor.id);
    }
    for machine in layout.machines() {
        assert_eq!(layout.machine_by_id(&machine.id), Some(machine));
    }
    for line in layout.lines() {
        assert_eq!(layout.line_by_id(&line.id), Some(line));
    }
}

#[test]
fn a_sensor_id_names_its_plant_line_machine_kind_and_range() {
    let layout = Layout::default_with(&Scale::default()).unwrap();
    let id = layout.sensor_id("P3-L03-M042-TEMP2").unwrap();
    let info = layout.sensor(id).unwrap();
    assert_eq!(info.plant.id, "P3");
    assert_eq!(info.plant.name, "Brno");
    assert_eq!(info.line.id, "P3-L03");
    assert_eq!(info.machine.id, "P3-L03-M042");
    // Machines 41-60 of a line are conveyors.
    assert_eq!(info.machine_type.name, "conveyor");
    assert_eq!(info.kind(), "TEMP");
    assert_eq!(info.sensor.index, 2);
    assert_eq!(info.unit(), "°C");
    assert_eq!(info.normal_range(), (22.0, 50.0));
    // The default factory is all analog.
    assert_eq!((info.spec.signal, info.spec.resolution), (crate::SignalKind::Analog, 0.0));
    assert_eq!(layout.machine_sensor(info.machine, "TEMP", 2), Some(id));
    assert_eq!(layout.machine_sensor(info.machine, "TEMP", 3), None);
}

#[test]
fn the_mixed_signals_layout_names_the_same_machines_with_other_kinds_of_sensor() {
    let layout = Layout::from_toml(crate::MIXED_SIGNALS_LAYOUT_TOML, &Scale::default()).unwrap();
    let id = layout.sensor_id("P3-L03-M042-TEMP1").unwrap();
    let info = layout.sensor(id).unwrap();
    assert_eq!(info.machine.id, "P3-L03-M042");
    assert_eq!(info.machine_type.name, "conveyor");
    assert_eq!(info.normal_range(), (22.0, 50.0));
    // Read through a 12-bit converter.
    assert_eq!((info.spec.signal, info.spec.resolution), (crate::SignalKind::Analog, 100.0 / 4096.0));
    assert_eq!(layout.machine_sensor(info.machine, "TEMP", 1), Some(id));
    assert_eq!(layout.machine_sensor(info.machine, "TEMP", 2), None);
    let counter = layout.machine_sensor(info.machine, "COUNT", 1).and_then(|id| layout.sensor(id)).unwrap();
    assert_eq!(counter.spec.signal, crate::SignalKind::Counter);
    let analog = Layout::default_with(&Scale::default()).unwrap();
    assert_eq!(layout.sensors().len(), analog.sensors().len(), "the same factory size");
}

#[test]
fn unknown_ids_are_not_found() {
    let layout = Layout::default_with(&Scale::default()).unwrap();
    for id in [0, 999_999, 1_010_000, 6_000_000, u32::MAX] {
        assert!(layout.sensor(id).is_none(), "{id}");
    }
    for name in ["", "P1", "P1-L01-M001", "P1-L01-M001-TEMP9", "p1-l01-m001-temp1", "P6-L01-M001-TEMP1"] {
        assert_eq!(layout.sensor_id(name), None, "{name}");
    }
    assert!(layout.machine_by_id("P1-L01-M001-TEMP1").is_none());
    assert!(layout.line_by_id("P1-L11").is_none());
    assert!(layout.plant_by_id("P1-L01").is_none());
    assert!(layout.plant_by_number(6).is_none());
}

#[test]
fn plants_keep_their_own_numbers_and_line_counts() {
    let layout = small(Scale::default());
    let ids: Vec<_> = layout.plants().iter().map(|p| p.id.as_str()).collect();
    assert_eq!(ids, ["P1", "P7"]);
    assert_eq!(layout.plants()[1].lines.len(), 3);
    // 5 machines × (3 sensors for a mill, 1 for a fan) per line.
    assert_eq!(layout.plants()[0].sensors.len(), 2 * 11);
    assert_eq!(layout.plants()[1].sensor_ids, 7_000_000..7_000_033);
    let names: Vec<_> = layout.sensors_in(&layout.machines()[0].sensors).iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["P1-L01-M001-TEMP1", "P1-L01-M001-TEMP2", "P1-L01-M001-VIB1"]);
    assert_eq!(layout.machines()[3].id, "P1-L01-M004");
    assert_eq!(layout.machine_type_of(&layout.machines()[3]).name, "fan");
    assert_eq!(layout.plant_by_number(7).map(|p| p.name.as_str()), Some("South"));
}

#[test]
fn scaling_down_gives_exactly_the_requested_sensors_with_the_mix_kept() {
    let scale = Scale { sensors_per_plant: Some(200), lines_per_plant: Some(4), ..Scale::default() };
    let layout = Layout::default_with(&scale).unwrap();
    assert_eq!(layout.sensor_count(), 5 * 200);
    for plant in layout.plants() {
        assert_eq!(plant.lines.len(), 4);
        for line in &layout.lines()[plant.lines.clone()] {
            assert_eq!(line.sensors.len(), 50);
        }
    }
    let types: std::collections::BTreeSet<_> =
        layout.machines().iter().map(|m| layout.machine_type_of(m).name.as_str()).collect();
    assert!(types.len() >= 3, "only {types:?} in a scaled line");
    assert_eq!(Layout::default_with(&scale).unwrap().sensors(), layout.sensors(), "scaling is deterministic");
}

#[test]
fn scaling_picks_a_line_count_that_grows_with_the_plant() {
    let lines = |sensors| {
        let layout = Layout::default_with(&Scale { sensors_per_plant: Some(sensors), ..Scale::default() }).unwrap();
        assert_eq!(layout.plants()[0].sensors.len(), sensors as usize);
        layout.plants()[0].lines.len()
    };
    assert_eq!(lines(200), 1);
    assert_eq!(lines(2_000), 4);
    assert_eq!(lines(10_000), 10);
    assert_eq!(lines(40_000), 20);
    assert_eq!(lines(3), 1);
}

#[test]
fn scaling_to_the_natural_size_changes_nothing() {
    let natural = Layout::default_with(&Scale::default()).unwrap();
    let scaled = Layout::default_with(&Scale { sensors_per_plant: Some(10_000), ..Scale::default() }).unwrap();
    assert_eq!(natural.sensors(), scaled.sensors());
    assert_eq!(natural.machines(), scaled.machines());
}

#[test]
fn plant_count_can_shrink_or_grow() {
    let two = Layout::default_with(&Scale { plants: Some(2), ..Scale::default() }).unwrap();
    assert_eq!(two.plants().len(), 2);
    assert_eq!(two.sensor_id("P2-L01-M001-TEMP1"), Some(2_000_000));
    let seven = Layout::default_with(&Scale { plants: Some(7), ..Scale::default() }).unwrap();
    assert_eq!(seven.plants()[6].id, "P7");
    assert_eq!(seven.plants()[6].name, "Plant 7");
    assert_eq!(seven.sensor_count(), 70_000);
}

#[test]
fn unknown_keys_are_named() {
    check_error("noise_sd = 0.5", "noise = 0.5", Scale::default(), "noise");
    check_error("lines_per_plant = 2", "lines_per_plant = 2\nspeed = 3", Scale::default(), "speed");
    check_error("name = \"North\"", "name = \"North\"\nsite = \"x\"", Scale::default(), "site");
    let err = check_error("life_days = 30", "life_days = 30\nlifetime = 3", Scale::default(), "lifetime");
    assert!(matches!(err, LayoutError::Parse(_)));
}

#[test]
fn malformed_files_are_rejected() {
    assert!(matches!(Layout::from_toml("this is = not [toml", &Scale::default()), Err(LayoutError::Parse(_))));
    assert!(matches!(Layout::from_toml("", &Scale::default()), Err(LayoutError::Parse(_))));
    check_error("count = 3", "count = -3", Scale::default(), "count");
    check_error("nominal = 30.0", "nominal = \"warm\"", Scale::default(), "nominal");
}

#[test]
fn zero_counts_are_rejected() {
    let err = check_error("lines_per_plant = 2", "lines_per_plant = 0", Scale::default(), "lines_per_plant");
    assert!(matches!(err, LayoutError::Zero(_)));
    let err = check_error("count = 3", "count = 0", Scale::default(), "line_machines \"mill\" count");
    assert!(matches!(err, LayoutError::Zero(_)));
    let err = check_error("kind = \"TEMP\"\ncount = 2", "kind = \"TEMP\"\ncount = 0", Scale::default(), "mill.TEMP");
    assert!(matches!(err, LayoutError::Zero(_)));
    let err = check_error("lines = 3", "lines = 0", Scale::default(), "plant 7 lines");
    assert!(matches!(err, LayoutError::Zero(_)));
}

#[test]
fn empty_or_inverted_ranges_are_rejected() {
    let err = check_error("normal_max = 50.0", "normal_max = 10.0", Scale::default(), "mill.TEMP");
    assert!(matches!(err, LayoutError::BadRange { min, max, .. } if min == 10.0 && max == 10.0));
    check_error("normal_max = 50.0", "normal_max = 5.0", Scale::default(), "not below");
    check_error("nominal = 30.0", "nominal = 60.0", Scale::default(), "nominal must be inside");
    check_error("noise_sd = 0.5", "noise_sd = -0.5", Scale::default(), "noise_sd must be zero or more");
    check_error("noise_sd = 0.5", "noise_sd = nan", Scale::default(), "finite");
    check_error("normal_min = 10.0", "normal_min = -inf", Scale::default(), "finite");
    check_error("life_days = 30", "life_days = 0", Scale::default(), "life_days");
    let plausible = |extra: &str, want: &str| {
        check_error("normal_max = 50.0", &format!("normal_max = 50.0\n{extra}"), Scale::default(), want)
    };
    plausible("plausible_min = 15.0", "plausible_min must be below normal_min");
    plausible("plausible_max = 50.0", "plausible_max must be above normal_max");
    plausible("plausible_max = inf", "finite");
    plausible("plausible_min = nan", "finite");
    check_error("noise_sd = 0.5", "noise_sd = 0.5\nresolution = -0.5", Scale::default(), "resolution");
    check_error("noise_sd = 0.5", "noise_sd = 0.5\nresolution = nan", Scale::default(), "resolution");
    check_error("noise_sd = 0.5", "noise_sd = 0.5\nresolution = 1e9", Scale::default(), "resolution");
}

#[test]
fn a_sensor_reads_plausibly_within_its_measuring_range_or_ten_normal_widths_beyond_its_band() {
    let layout = small(Scale::default());
    let temp = layout.sensor(layout.sensor_id("P1-L01-M001-TEMP1").unwrap()).unwrap();
    assert_eq!(temp.normal_range(), (10.0, 50.0));
    assert_eq!(temp.plausible_range(), (10.0 - 400.0, 50.0 + 400.0));
    let text =
        SMALL.replacen("normal_max = 50.0", "normal_max = 50.0\nplausible_min = -40.0\nplausible_max = 300.0", 1);
    let layout = Layout::from_toml(&text, &Scale::default()).unwrap();
    let temp = layout.sensor(layout.sensor_id("P1-L01-M001-TEMP1").unwrap()).unwrap();
    assert_eq!(temp.plausible_range(), (-40.0, 300.0));
    let counter = SMALL.replacen("noise_sd = 0.5", "noise_sd = 0.5\nsignal = \"counter\"", 1);
    let layout = Layout::from_toml(&counter, &Scale::default()).unwrap();
    let spec = layout.sensor_at(0).spec;
    assert_eq!(
        spec.plausible_range(),
        (0.0_f64.min(spec.normal_min), crate::COUNTER_MAX),
        "a count reaches 2^53, where a double stops counting by one"
    );
    // A minute's readings of a thousand counters at the bound sum far from overflowing.
    assert!((crate::COUNTER_MAX * 60.0 * 1000.0 * 1000.0).is_finite());
    let capped = counter.replacen("signal = \"counter\"", "signal = \"counter\"\nplausible_max = 1e12", 1);
    let layout = Layout::from_toml(&capped, &Scale::default()).unwrap();
    assert_eq!(layout.sensor_at(0).spec.plausible_range().1, 1e12, "a counter that wraps says where");
}

#[test]
fn kinds_of_signal_are_read_and_unknown_ones_rejected() {
    let text = SMALL.replacen(
        "noise_sd = 0.5",
        "noise_sd = 0.5\nsignal = \"counter\"\nnoise = \"spiky\"\nirregular = true",
        1,
    );
    let layout = Layout::from_toml(&text, &Scale::default()).unwrap();
    let spec = layout.sensor_at(0).spec;
    assert_eq!((spec.signal, spec.noise, spec.irregular), (crate::SignalKind::Counter, crate::NoiseKind::Spiky, true));
    for bad in ["signal = \"pulse\"", "noise = \"pink\"", "flat_when_idle = \"yes\""] {
        let text = SMALL.replacen("noise_sd = 0.5", &format!("noise_sd = 0.5\n{bad}"), 1);
        assert!(Layout::from_toml(&text, &Scale::default()).is_err(), "{bad} accepted");
    }
}

#[test]
fn duplicate_names_are_rejected() {
    let dup = |from: &str, to: &str, what: &str| {
        let err = check_error(from, to, Scale::default(), "duplicate");
        assert!(matches!(&err, LayoutError::Duplicate { what: w, .. } if *w == what), "{err}");
    };
    dup("number = 7", "number = 1", "plant number");
    dup("name = \"South\"", "name = \"North\"", "plant name");
    dup("name = \"fan\"", "name = \"mill\"", "machine type");
    dup("kind = \"VIB\"", "kind = \"TEMP\"", "sensor kind");
    dup("machine_type = \"fan\"", "machine_type = \"mill\"", "line_machines entry");
}

#[test]
fn bad_names_and_references_are_rejected() {
    let err = check_error("machine_type = \"fan\"", "machine_type = \"blower\"", Scale::default(), "blower");
    assert!(matches!(err, LayoutError::UnknownMachineType(name) if name == "blower"));
    check_error("kind = \"VIB\"", "kind = \"VIB2\"", Scale::default(), "upper-case letters");
    check_error("kind = \"VIB\"", "kind = \"vib\"", Scale::default(), "upper-case letters");
    check_error("kind = \"VIB\"", "kind = \"VIBRATION\"", Scale::default(), "upper-case letters");
    check_error("name = \"fan\"", "name = \"Fan Unit\"", Scale::default(), "machine type name");
    check_error("name = \"North\"", "name = \" \"", Scale::default(), "plant name");
    check_error("unit = \"rpm\"", "unit = \"\"", Scale::default(), "sensor unit");
}

#[test]
fn missing_sections_are_named() {
    let no_plants = SMALL.replace("[[plant]]", "[[old_plant]]");
    assert!(matches!(Layout::from_toml(&no_plants, &Scale::default()), Err(LayoutError::Parse(_))));
    let config = LayoutConfig::from_toml(SMALL).unwrap();
    let mut empty = config.clone();
    empty.plants.clear();
    assert!(matches!(Layout::build(&empty, &Scale::default()), Err(LayoutError::Missing(_))));
    let mut empty = config.clone();
    empty.machine_types[1].sensors.clear();
    assert!(matches!(Layout::build(&empty, &Scale::default()), Err(LayoutError::Zero(_))));
}

#[test]
fn sizes_beyond_the_id_scheme_are_rejected() {
    let err = check_error("lines_per_plant = 2", "lines_per_plant = 100", Scale::default(), "between 1 and 99");
    assert!(matches!(err, LayoutError::TooMany { got: 100, .. }));
    check_error("count = 3", "count = 1000", Scale::default(), "between 1 and 999");
    check_error("number = 7", "number = 4294", Scale::default(), "plant number");
    check_error("number = 7", "number = 0", Scale::default(), "plant number");
    check_error("kind = \"VIB\"\ncount = 1", "kind = \"VIB\"\ncount = 100", Scale::default(), "mill.VIB count");
    // 99 lines of 999 machines with 3 sensors each is over a million sensors per plant.
    let huge = SMALL
        .replace("lines_per_plant = 2", "lines_per_plant = 99")
        .replacen("count = 3", "count = 997", 1)
        .replace("kind = \"TEMP\"\ncount = 2", "kind = \"TEMP\"\ncount = 20");
    let err = Layout::from_toml(&huge, &Scale::default()).unwrap_err();
    assert!(matches!(err, LayoutError::TooMany { ref what, .. } if what == "sensors per plant"), "{err}");
    // One gateway batch cannot carry more than 100,000 readings: 997 mills of 199 sensors.
    let wide = SMALL
        .replacen("count = 3", "count = 997", 1)
        .replace("kind = \"TEMP\"\ncount = 2", "kind = \"TEMP\"\ncount = 99")
        .replace("kind = \"VIB\"\ncount = 1", "kind = \"VIB\"\ncount = 99");
    let err = Layout::from_toml(&wide, &Scale::default()).unwrap_err();
    assert!(matches!(err, LayoutError::TooMany { ref what, .. } if what == "sensors per line"), "{err}");
}

#[test]
fn scaling_requests_out_of_range_are_rejected() {
    let build = |scale: Scale| Layout::from_toml(SMALL, &scale).unwrap_err();
    let err = build(Scale { sensors_per_plant: Some(3), lines_per_plant: Some(4), ..Scale::default() });
    assert!(matches!(err, LayoutError::TooFewSensors { sensors: 3, lines: 4 }));
    assert!(matches!(build(Scale { sensors_per_plant: Some(0), ..Scale::default() }), LayoutError::Zero(_)));
    let err = build(Scale { sensors_per_plant: Some(MAX_SENSORS_PER_PLANT + 1), ..Scale::default() });
    assert!(matches!(err, LayoutError::TooMany { .. }));
    assert!(matches!(build(Scale { lines_per_plant: Some(100), ..Scale::default() }), LayoutError::TooMany { .. }));
    assert!(matches!(build(Scale { plants: Some(0), ..Scale::default() }), LayoutError::Zero(_)));
    let err = build(Scale { plants: Some(5_000), ..Scale::default() });
    assert!(matches!(err, LayoutError::TooMany { ref what, .. } if what == "plants"), "{err}");
    // Within every per-plant limit, but far beyond what the whole layout may hold.
    let scale = Scale { plants: Some(4_000), sensors_per_plant: Some(1_000_000), ..Scale::default() };
    let err = Layout::default_with(&scale).unwrap_err();
    assert!(matches!(err, LayoutError::TooMany { ref what, .. } if what == "sensors in all plants"), "{err}");
    // A line of more than 999 machines.
    let err = build(Scale { sensors_per_plant: Some(500_000), lines_per_plant: Some(1), ..Scale::default() });
    assert!(matches!(err, LayoutError::TooMany { ref what, .. } if what == "machines per line"), "{err}");
}
