//! A plant's layout as the rows of the layout tables (plant, lines, machines, sensors):
//! the plant's read models and the cloud's both write these columns, so both take them
//! from here.

use super::model::PlantLayout;

/// The plant's row.
#[derive(Debug, Clone, PartialEq)]
pub struct PlantRow<'a> {
    pub id: &'a str,
    pub name: &'a str,
    pub lines: i32,
    pub machines: i32,
    pub sensors: i32,
}

/// Its lines, column by column.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LineColumns<'a> {
    pub ids: Vec<&'a str>,
    pub numbers: Vec<i32>,
    pub machines: Vec<i32>,
    pub sensors: Vec<i32>,
}

/// Its machines, column by column.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MachineColumns<'a> {
    pub ids: Vec<&'a str>,
    pub line_ids: Vec<&'a str>,
    pub numbers: Vec<i32>,
    pub machine_types: Vec<&'a str>,
    pub descriptions: Vec<&'a str>,
    pub sensors: Vec<i32>,
}

/// Its sensors, column by column.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SensorColumns<'a> {
    pub ids: Vec<i32>,
    pub names: Vec<&'a str>,
    pub machine_ids: Vec<&'a str>,
    pub kinds: Vec<&'a str>,
    pub units: Vec<&'a str>,
    pub normal_min: Vec<f64>,
    pub normal_max: Vec<f64>,
}

/// Every layout row of one plant.
#[derive(Debug, Clone, PartialEq)]
pub struct LayoutTables<'a> {
    pub plant: PlantRow<'a>,
    pub lines: LineColumns<'a>,
    pub machines: MachineColumns<'a>,
    pub sensors: SensorColumns<'a>,
}

impl PlantLayout {
    /// This plant's rows of the layout tables.
    pub fn tables(&self) -> LayoutTables<'_> {
        let plant = self.plant();
        let layout = &self.layout;
        let lines = &layout.lines()[plant.lines.clone()];
        let machines = &layout.machines()[plant.machines.clone()];
        let mut sensors = SensorColumns::default();
        for ix in 0..self.machine_of.len() {
            let s = self.sensor(ix);
            sensors.ids.push(s.sensor.id as i32);
            sensors.names.push(s.sensor.name.as_str());
            sensors.machine_ids.push(s.machine.id.as_str());
            sensors.kinds.push(s.spec.kind.as_str());
            sensors.units.push(s.spec.unit.as_str());
            let (lo, hi) = s.normal_range();
            sensors.normal_min.push(lo);
            sensors.normal_max.push(hi);
        }
        LayoutTables {
            plant: PlantRow {
                id: &plant.id,
                name: &plant.name,
                lines: plant.lines.len() as i32,
                machines: plant.machines.len() as i32,
                sensors: plant.sensors.len() as i32,
            },
            lines: LineColumns {
                ids: lines.iter().map(|x| x.id.as_str()).collect(),
                numbers: lines.iter().map(|x| i32::from(x.number)).collect(),
                machines: lines.iter().map(|x| x.machines.len() as i32).collect(),
                sensors: lines.iter().map(|x| x.sensors.len() as i32).collect(),
            },
            machines: MachineColumns {
                ids: machines.iter().map(|m| m.id.as_str()).collect(),
                line_ids: machines.iter().map(|m| layout.lines()[m.line].id.as_str()).collect(),
                numbers: machines.iter().map(|m| i32::from(m.number)).collect(),
                machine_types: machines.iter().map(|m| layout.machine_type_of(m).name.as_str()).collect(),
                descriptions: machines.iter().map(|m| layout.machine_type_of(m).description.as_str()).collect(),
                sensors: machines.iter().map(|m| m.sensors.len() as i32).collect(),
            },
            sensors,
        }
    }
}
