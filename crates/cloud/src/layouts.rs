//! Every plant's layout as the cloud's projections use it: which line and machine type
//! (the KPI group) each sensor and machine belongs to. Built from each plant's
//! `LayoutConfigured` events in the cloud's log.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use anyhow::Result;
use domain::events::{LAYOUT_CONFIGURED, LayoutConfigured, PLANT};
use eventlog::{GenericClient, RecordedEvent, StreamName};
use readmodels::live::PlantLayout;

/// One KPI group of a plant: its machines of one type on one line.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Group {
    pub line_id: String,
    pub machine_type: String,
}

/// A plant's layout with its groups.
#[derive(Debug)]
pub struct PlantGroups {
    pub layout: PlantLayout,
    pub groups: Vec<Group>,
    /// Group index of each plant-local machine.
    group_of_machine: Vec<u32>,
    by_machine_id: HashMap<String, usize>,
}

impl PlantGroups {
    pub fn build(layout: PlantLayout) -> PlantGroups {
        let mut index: BTreeMap<Group, u32> = BTreeMap::new();
        let plant = layout.plant().clone();
        let mut group_of_machine = Vec::with_capacity(plant.machines.len());
        let mut by_machine_id = HashMap::with_capacity(plant.machines.len());
        for (i, m) in layout.layout.machines()[plant.machines.clone()].iter().enumerate() {
            let group = Group {
                line_id: layout.layout.lines()[m.line].id.clone(),
                machine_type: layout.layout.machine_type_of(m).name.clone(),
            };
            let next = index.len() as u32;
            group_of_machine.push(*index.entry(group).or_insert(next));
            by_machine_id.insert(m.id.clone(), i);
        }
        let mut groups = vec![Group { line_id: String::new(), machine_type: String::new() }; index.len()];
        for (g, i) in index {
            groups[i as usize] = g;
        }
        PlantGroups { layout, groups, group_of_machine, by_machine_id }
    }

    /// The group of a sensor by its numeric id.
    pub fn sensor_group(&self, sensor: u32) -> Option<&Group> {
        let s = self.layout.sensor_ix(sensor)?;
        let m = *self.layout.machine_of.get(s)? as usize;
        self.groups.get(*self.group_of_machine.get(m)? as usize)
    }

    /// The group of a machine by its id.
    pub fn machine_group(&self, machine_id: &str) -> Option<&Group> {
        let m = *self.by_machine_id.get(machine_id)?;
        self.groups.get(*self.group_of_machine.get(m)? as usize)
    }
}

/// The layouts of every plant seen so far.
#[derive(Debug, Default, Clone)]
pub struct Layouts {
    plants: HashMap<u16, Arc<PlantGroups>>,
}

/// What a `LayoutConfigured` event did.
#[derive(Debug)]
pub enum LayoutChange {
    Configured(Arc<PlantGroups>),
    /// The event could not be used (another plant's layout, or one that does not build).
    Refused(String),
}

impl Layouts {
    pub fn get(&self, plant: u16) -> Option<&Arc<PlantGroups>> {
        self.plants.get(&plant)
    }

    /// Applies a `LayoutConfigured` of `plant` (other events are ignored: `None`).
    pub fn apply(&mut self, plant: u16, e: &RecordedEvent) -> Option<LayoutChange> {
        if e.event_type != LAYOUT_CONFIGURED || e.stream.category() != PLANT {
            return None;
        }
        let event: LayoutConfigured = match e.json() {
            Ok(v) => v,
            Err(err) => return Some(LayoutChange::Refused(format!("unreadable layout: {err}"))),
        };
        if event.plant != plant {
            return Some(LayoutChange::Refused(format!("plant {plant} sent the layout of plant {}", event.plant)));
        }
        match PlantLayout::build(&event) {
            Ok(mut layout) => {
                layout.layout_position = e.position;
                let groups = Arc::new(PlantGroups::build(layout));
                self.plants.insert(plant, groups.clone());
                Some(LayoutChange::Configured(groups))
            }
            Err(err) => Some(LayoutChange::Refused(err)),
        }
    }

    /// The layouts as of `position` of the cloud's log: each known plant's newest
    /// `LayoutConfigured` at or before it.
    pub async fn load(client: &impl GenericClient, position: i64) -> Result<Layouts> {
        let mut layouts = Layouts::default();
        for origin in eventlog::origins(client).await? {
            let plant = origin.origin;
            let stream = StreamName::of(PLANT, &format!("P{plant}"))?;
            let events = eventlog::read_origin_stream(client, plant, &stream, 0, 100_000).await?;
            // In order, as the live projection saw them (an unusable one keeps the one before).
            for e in events.iter().filter(|e| e.position <= position) {
                layouts.apply(plant, e);
            }
        }
        Ok(layouts)
    }
}
