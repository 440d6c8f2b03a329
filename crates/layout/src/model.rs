//! The built layout: every plant, line, machine and sensor with its ids, and lookups both ways.

use crate::config::{
    LayoutConfig, MAX_LINES_PER_PLANT, MAX_MACHINES_PER_LINE, MAX_PLANT_NUMBER, MAX_SENSORS_PER_LAYOUT,
    MAX_SENSORS_PER_LINE, MAX_SENSORS_PER_PLANT, MachineType, PLANT_ID_STRIDE, SensorSpec,
};
use crate::error::LayoutError;
use std::collections::HashMap;
use std::ops::Range;

/// Numeric sensor id used on the wire (the same type as `telemetry::SensorId`).
pub type SensorId = u32;

/// Overrides that resize a layout without editing its file. `None` keeps the file's value.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Scale {
    /// Use the first N plants of the file; beyond the file's plants, more are added with
    /// the next free numbers, named `Plant N`.
    pub plants: Option<u32>,
    /// Lines in every plant.
    pub lines_per_plant: Option<u32>,
    /// Exact number of sensors in every plant. The machine mix of a line is kept in
    /// proportion; when the count does not divide into whole machines, the last machine
    /// of a line keeps only its first sensors. Without `lines_per_plant`, the number of
    /// lines grows or shrinks with the square root of the scale factor.
    pub sensors_per_plant: Option<u32>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Plant {
    /// Stable number from the layout file (`P3` has number 3).
    pub number: u16,
    /// `P3`.
    pub id: String,
    pub name: String,
    /// Indices into [`Layout::lines`].
    pub lines: Range<usize>,
    /// Indices into [`Layout::machines`].
    pub machines: Range<usize>,
    /// Indices into [`Layout::sensors`].
    pub sensors: Range<usize>,
    /// The plant's numeric sensor ids (contiguous).
    pub sensor_ids: Range<SensorId>,
}

/// A production line. Each line has one gateway, whose id is the line id.
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    /// `P1-L03`; also the id of the line's gateway.
    pub id: String,
    /// 1-based number within the plant.
    pub number: u16,
    /// Index into [`Layout::plants`].
    pub plant: usize,
    pub machines: Range<usize>,
    pub sensors: Range<usize>,
    /// The numeric ids the line's gateway reports (contiguous).
    pub sensor_ids: Range<SensorId>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Machine {
    /// `P1-L03-M042`.
    pub id: String,
    /// 1-based number within the line.
    pub number: u16,
    pub plant: usize,
    pub line: usize,
    /// Index into [`Layout::machine_types`].
    pub machine_type: usize,
    pub sensors: Range<usize>,
    pub sensor_ids: Range<SensorId>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Sensor {
    pub id: SensorId,
    /// `P1-L03-M042-TEMP1`.
    pub name: String,
    pub plant: usize,
    pub line: usize,
    pub machine: usize,
    /// Index into the machine type's `sensors`.
    pub spec: usize,
    /// 1-based index within its kind on its machine (the `1` of `TEMP1`).
    pub index: u32,
}

/// Everything known about one sensor, resolved from its id.
#[derive(Debug, Clone, Copy)]
pub struct SensorInfo<'a> {
    pub sensor: &'a Sensor,
    pub plant: &'a Plant,
    pub line: &'a Line,
    pub machine: &'a Machine,
    pub machine_type: &'a MachineType,
    pub spec: &'a SensorSpec,
}

impl SensorInfo<'_> {
    pub fn id(&self) -> SensorId {
        self.sensor.id
    }
    pub fn name(&self) -> &str {
        &self.sensor.name
    }
    pub fn kind(&self) -> &str {
        &self.spec.kind
    }
    pub fn unit(&self) -> &str {
        &self.spec.unit
    }
    pub fn normal_range(&self) -> (f64, f64) {
        self.spec.normal_range()
    }
    /// What a working sensor of this kind can report at all (see [`SensorSpec::plausible_range`]).
    pub fn plausible_range(&self) -> (f64, f64) {
        self.spec.plausible_range()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Named {
    Plant(usize),
    Line(usize),
    Machine(usize),
    Sensor(usize),
}

/// A built plant layout. Plants, lines, machines and sensors are stored in id order;
/// each one's children are a contiguous range of the next level.
#[derive(Debug, Clone)]
pub struct Layout {
    machine_types: Vec<MachineType>,
    plants: Vec<Plant>,
    lines: Vec<Line>,
    machines: Vec<Machine>,
    sensors: Vec<Sensor>,
    /// Plant index by plant number, for O(1) numeric lookups.
    plant_by_number: Vec<Option<usize>>,
    by_name: HashMap<Box<str>, Named>,
}

impl Layout {
    /// Parses a layout file and builds it at the given scale.
    pub fn from_toml(text: &str, scale: &Scale) -> Result<Layout, LayoutError> {
        Layout::build(&LayoutConfig::from_toml(text)?, scale)
    }

    /// Builds a checked layout at the given scale.
    pub fn build(config: &LayoutConfig, scale: &Scale) -> Result<Layout, LayoutError> {
        config.validate()?;
        Builder::new(config).build(scale)
    }

    pub fn machine_types(&self) -> &[MachineType] {
        &self.machine_types
    }
    pub fn plants(&self) -> &[Plant] {
        &self.plants
    }
    pub fn lines(&self) -> &[Line] {
        &self.lines
    }
    /// The gateways: one per line, with the line's id.
    pub fn gateways(&self) -> &[Line] {
        &self.lines
    }
    pub fn machines(&self) -> &[Machine] {
        &self.machines
    }
    pub fn sensors(&self) -> &[Sensor] {
        &self.sensors
    }

    /// Index into [`Layout::sensors`] of a numeric id, in O(1).
    pub fn sensor_index(&self, id: SensorId) -> Option<usize> {
        let plant = self.plant_index_of(id)?;
        let plant = &self.plants[plant];
        let offset = (id % PLANT_ID_STRIDE) as usize;
        (offset < plant.sensors.len()).then(|| plant.sensors.start + offset)
    }

    /// Everything about a sensor from its numeric id, in O(1).
    pub fn sensor(&self, id: SensorId) -> Option<SensorInfo<'_>> {
        self.sensor_index(id).map(|ix| self.sensor_at(ix))
    }

    /// Everything about the sensor at an index of [`Layout::sensors`].
    ///
    /// # Panics
    /// If `ix` is out of range.
    pub fn sensor_at(&self, ix: usize) -> SensorInfo<'_> {
        let sensor = &self.sensors[ix];
        let machine = &self.machines[sensor.machine];
        let machine_type = &self.machine_types[machine.machine_type];
        SensorInfo {
            sensor,
            plant: &self.plants[sensor.plant],
            line: &self.lines[sensor.line],
            machine,
            machine_type,
            spec: &machine_type.sensors[sensor.spec],
        }
    }

    /// Numeric id of a sensor from its text id (`P1-L03-M042-TEMP1`).
    pub fn sensor_id(&self, name: &str) -> Option<SensorId> {
        match self.by_name.get(name) {
            Some(Named::Sensor(ix)) => Some(self.sensors[*ix].id),
            _ => None,
        }
    }

    /// Index into [`Layout::plants`] of the plant holding a numeric sensor id.
    pub fn plant_index_of(&self, id: SensorId) -> Option<usize> {
        let number = (id / PLANT_ID_STRIDE) as usize;
        self.plant_by_number.get(number).copied().flatten()
    }

    pub fn plant_index(&self, id: &str) -> Option<usize> {
        match self.by_name.get(id) {
            Some(Named::Plant(ix)) => Some(*ix),
            _ => None,
        }
    }
    pub fn line_index(&self, id: &str) -> Option<usize> {
        match self.by_name.get(id) {
            Some(Named::Line(ix)) => Some(*ix),
            _ => None,
        }
    }
    pub fn machine_index(&self, id: &str) -> Option<usize> {
        match self.by_name.get(id) {
            Some(Named::Machine(ix)) => Some(*ix),
            _ => None,
        }
    }
    pub fn plant_by_id(&self, id: &str) -> Option<&Plant> {
        self.plant_index(id).map(|ix| &self.plants[ix])
    }
    pub fn line_by_id(&self, id: &str) -> Option<&Line> {
        self.line_index(id).map(|ix| &self.lines[ix])
    }
    /// The gateway (line) with this id.
    pub fn gateway(&self, id: &str) -> Option<&Line> {
        self.line_by_id(id)
    }
    pub fn machine_by_id(&self, id: &str) -> Option<&Machine> {
        self.machine_index(id).map(|ix| &self.machines[ix])
    }
    pub fn plant_by_number(&self, number: u16) -> Option<&Plant> {
        self.plant_by_number.get(usize::from(number)).copied().flatten().map(|ix| &self.plants[ix])
    }

    /// The sensors of a plant, line or machine, given its `sensors` range.
    pub fn sensors_in(&self, range: &Range<usize>) -> &[Sensor] {
        &self.sensors[range.clone()]
    }

    /// The sensors a gateway reports, in id order.
    pub fn gateway_sensors(&self, line: &Line) -> &[Sensor] {
        self.sensors_in(&line.sensors)
    }

    pub fn machine_type_of(&self, machine: &Machine) -> &MachineType {
        &self.machine_types[machine.machine_type]
    }

    /// The numeric id of a machine's sensor by kind and 1-based index (`TEMP`, 1).
    pub fn machine_sensor(&self, machine: &Machine, kind: &str, index: u32) -> Option<SensorId> {
        self.sensors_in(&machine.sensors)
            .iter()
            .find(|s| s.index == index && self.machine_types[machine.machine_type].sensors[s.spec].kind == kind)
            .map(|s| s.id)
    }

    pub fn sensor_count(&self) -> usize {
        self.sensors.len()
    }
}

/// One machine of a line before numbering: its type and how many of its sensors it keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Slot {
    entry: usize,
    machine_type: usize,
    sensors: u32,
}

struct Builder<'a> {
    config: &'a LayoutConfig,
    /// (machine type index, machines per line, sensors per machine) per `line_machines` entry.
    mix: Vec<(usize, u32, u32)>,
    layout: Layout,
}

impl<'a> Builder<'a> {
    fn new(config: &'a LayoutConfig) -> Self {
        let mix = config
            .line_machines
            .iter()
            .map(|entry| {
                let ix = config.machine_type_index(&entry.machine_type).expect("validate() checked every name");
                let sensors = config.machine_types[ix].sensors.iter().map(|s| s.count).sum();
                (ix, entry.count, sensors)
            })
            .collect();
        Builder {
            config,
            mix,
            layout: Layout {
                machine_types: config.machine_types.clone(),
                plants: Vec::new(),
                lines: Vec::new(),
                machines: Vec::new(),
                sensors: Vec::new(),
                plant_by_number: Vec::new(),
                by_name: HashMap::new(),
            },
        }
    }

    fn natural_line(&self) -> Vec<Slot> {
        self.mix
            .iter()
            .enumerate()
            .flat_map(|(entry, &(machine_type, count, sensors))| {
                (0..count).map(move |_| Slot { entry, machine_type, sensors })
            })
            .collect()
    }

    fn natural_line_sensors(&self) -> u64 {
        self.mix.iter().map(|&(_, count, sensors)| u64::from(count) * u64::from(sensors)).sum()
    }

    /// Picks machines for a line of exactly `budget` sensors, keeping the mix in
    /// proportion: a smooth weighted round robin over the entries, so any prefix of the
    /// sequence is as close to the configured proportions as whole machines allow.
    fn scaled_line(&self, budget: u32) -> Result<Vec<Slot>, LayoutError> {
        let total_weight: i64 = self.mix.iter().map(|&(_, count, _)| i64::from(count)).sum();
        let mut current = vec![0i64; self.mix.len()];
        let mut slots = Vec::new();
        let mut left = budget;
        while left > 0 {
            for (c, &(_, count, _)) in current.iter_mut().zip(&self.mix) {
                *c += i64::from(count);
            }
            let mut best = 0;
            for (i, c) in current.iter().enumerate() {
                if *c > current[best] {
                    best = i;
                }
            }
            current[best] -= total_weight;
            let (machine_type, _, sensors) = self.mix[best];
            let take = sensors.min(left);
            left -= take;
            slots.push(Slot { entry: best, machine_type, sensors: take });
            if slots.len() > MAX_MACHINES_PER_LINE as usize {
                return Err(LayoutError::TooMany {
                    what: "machines per line".into(),
                    got: slots.len() as u64,
                    min: 1,
                    max: u64::from(MAX_MACHINES_PER_LINE),
                });
            }
        }
        // Number machines grouped by type, in the order the file lists them, as the
        // unscaled layout does.
        slots.sort_by_key(|slot| slot.entry);
        Ok(slots)
    }

    fn plant_list(&self, scale: &Scale) -> Result<Vec<(u16, String, Option<u32>)>, LayoutError> {
        let listed = &self.config.plants;
        let count = match scale.plants {
            Some(n) => n as usize,
            None => listed.len(),
        };
        if count == 0 {
            return Err(LayoutError::Zero("plants".into()));
        }
        let mut plants: Vec<_> = listed.iter().take(count).map(|p| (p.number, p.name.clone(), p.lines)).collect();
        let mut next = listed.iter().map(|p| p.number).max().unwrap_or(0);
        while plants.len() < count {
            if next >= MAX_PLANT_NUMBER {
                return Err(LayoutError::TooMany {
                    what: "plants".into(),
                    got: count as u64,
                    min: 1,
                    max: plants.len() as u64,
                });
            }
            next += 1;
            plants.push((next, format!("Plant {next}"), None));
        }
        Ok(plants)
    }

    fn plant_lines(&self, scale: &Scale, own_lines: Option<u32>) -> Result<Vec<Vec<Slot>>, LayoutError> {
        let lines = scale.lines_per_plant.or(own_lines).unwrap_or(self.config.lines_per_plant);
        check_range("lines per plant", u64::from(lines), 1, u64::from(MAX_LINES_PER_PLANT))?;
        let Some(target) = scale.sensors_per_plant else {
            return Ok(vec![self.natural_line(); lines as usize]);
        };
        check_range("sensors per plant", u64::from(target), 1, u64::from(MAX_SENSORS_PER_PLANT))?;
        let lines = if scale.lines_per_plant.is_some() {
            lines
        } else {
            let natural = lines as f64 * self.natural_line_sensors() as f64;
            let factor = f64::from(target) / natural;
            let scaled = (f64::from(lines) * factor.sqrt()).round();
            (scaled as u32).clamp(1, MAX_LINES_PER_PLANT).min(target)
        };
        if target < lines {
            return Err(LayoutError::TooFewSensors { sensors: target, lines });
        }
        let (base, extra) = (target / lines, target % lines);
        let small = self.scaled_line(base)?;
        let large = if extra > 0 { self.scaled_line(base + 1)? } else { Vec::new() };
        Ok((0..lines).map(|i| if i < extra { large.clone() } else { small.clone() }).collect())
    }

    fn build(mut self, scale: &Scale) -> Result<Layout, LayoutError> {
        let mut plants = Vec::new();
        let mut total = 0u64;
        for (number, name, own_lines) in self.plant_list(scale)? {
            let plant_lines = self.plant_lines(scale, own_lines)?;
            for line in &plant_lines {
                let sensors: u64 = line.iter().map(|slot| u64::from(slot.sensors)).sum();
                check_range("sensors per line", sensors, 1, u64::from(MAX_SENSORS_PER_LINE))?;
            }
            let planned: u64 = plant_lines.iter().flatten().map(|slot| u64::from(slot.sensors)).sum();
            check_range("sensors per plant", planned, 1, u64::from(MAX_SENSORS_PER_PLANT))?;
            total += planned;
            // Checked before anything is built, so an oversized request costs no memory.
            check_range("sensors in all plants", total, 1, MAX_SENSORS_PER_LAYOUT)?;
            plants.push((number, name, plant_lines));
        }
        for (number, name, plant_lines) in plants {
            self.add_plant(number, name, &plant_lines);
        }
        Ok(self.layout)
    }

    fn add_plant(&mut self, number: u16, name: String, plant_lines: &[Vec<Slot>]) {
        let layout = &mut self.layout;
        let plant_ix = layout.plants.len();
        let plant_id = format!("P{number}");
        let first_id = u32::from(number) * PLANT_ID_STRIDE;
        let (line_start, machine_start, sensor_start) =
            (layout.lines.len(), layout.machines.len(), layout.sensors.len());
        for (line_no, slots) in plant_lines.iter().enumerate() {
            let line_ix = layout.lines.len();
            let line_id = format!("{plant_id}-L{:02}", line_no + 1);
            let (line_machines, line_sensors) = (layout.machines.len(), layout.sensors.len());
            for (machine_no, slot) in slots.iter().enumerate() {
                let machine_ix = layout.machines.len();
                let machine_id = format!("{line_id}-M{:03}", machine_no + 1);
                let machine_sensors = layout.sensors.len();
                let specs = &self.config.machine_types[slot.machine_type].sensors;
                let expanded = specs
                    .iter()
                    .enumerate()
                    .flat_map(|(spec_ix, spec)| (1..=spec.count).map(move |index| (spec_ix, spec, index)))
                    .take(slot.sensors as usize);
                for (spec_ix, spec, index) in expanded {
                    let sensor_ix = layout.sensors.len();
                    let id = first_id + (sensor_ix - sensor_start) as u32;
                    let name = format!("{machine_id}-{}{index}", spec.kind);
                    layout.by_name.insert(name.clone().into(), Named::Sensor(sensor_ix));
                    layout.sensors.push(Sensor {
                        id,
                        name,
                        plant: plant_ix,
                        line: line_ix,
                        machine: machine_ix,
                        spec: spec_ix,
                        index,
                    });
                }
                layout.by_name.insert(machine_id.clone().into(), Named::Machine(machine_ix));
                layout.machines.push(Machine {
                    id: machine_id,
                    number: (machine_no + 1) as u16,
                    plant: plant_ix,
                    line: line_ix,
                    machine_type: slot.machine_type,
                    sensors: machine_sensors..layout.sensors.len(),
                    sensor_ids: ids(first_id, sensor_start, machine_sensors..layout.sensors.len()),
                });
            }
            layout.by_name.insert(line_id.clone().into(), Named::Line(line_ix));
            layout.lines.push(Line {
                id: line_id,
                number: (line_no + 1) as u16,
                plant: plant_ix,
                machines: line_machines..layout.machines.len(),
                sensors: line_sensors..layout.sensors.len(),
                sensor_ids: ids(first_id, sensor_start, line_sensors..layout.sensors.len()),
            });
        }
        layout.by_name.insert(plant_id.clone().into(), Named::Plant(plant_ix));
        layout.plants.push(Plant {
            number,
            id: plant_id,
            name,
            lines: line_start..layout.lines.len(),
            machines: machine_start..layout.machines.len(),
            sensors: sensor_start..layout.sensors.len(),
            sensor_ids: ids(first_id, sensor_start, sensor_start..layout.sensors.len()),
        });
        let slot = usize::from(number);
        if layout.plant_by_number.len() <= slot {
            layout.plant_by_number.resize(slot + 1, None);
        }
        layout.plant_by_number[slot] = Some(plant_ix);
    }
}

fn ids(first_id: u32, plant_start: usize, range: Range<usize>) -> Range<SensorId> {
    first_id + (range.start - plant_start) as u32..first_id + (range.end - plant_start) as u32
}

fn check_range(what: &str, got: u64, min: u64, max: u64) -> Result<(), LayoutError> {
    if got == 0 && min > 0 {
        return Err(LayoutError::Zero(what.to_string()));
    }
    if got < min || got > max {
        return Err(LayoutError::TooMany { what: what.to_string(), got, min, max });
    }
    Ok(())
}
