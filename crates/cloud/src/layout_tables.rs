//! The layout tables (`cloud.plants`, `lines`, `machines`, `sensors`, `groups`): a plant's
//! rows replaced whole when its layout changes.

use std::collections::BTreeMap;

use anyhow::Result;
use eventlog::Transaction;

use crate::layouts::{Group, PlantGroups};

pub async fn write(tx: &Transaction<'_>, plant: u16, groups: &PlantGroups, position: i64) -> Result<()> {
    let key = plant as i16;
    // The same rows as the plant's own read models hold, with the plant's key.
    let t = groups.layout.tables();
    let p = &t.plant;
    tx.execute(include_str!("../sql/delete_layout.sql"), &[&key]).await?;
    tx.execute(
        include_str!("../sql/insert_plant.sql"),
        &[&key, &p.id, &p.name, &p.lines, &p.machines, &p.sensors, &position],
    )
    .await?;
    let c = &t.lines;
    let positions = vec![position; c.ids.len()];
    tx.execute(
        include_str!("../sql/insert_lines.sql"),
        &[&key, &c.ids, &c.numbers, &c.machines, &c.sensors, &positions],
    )
    .await?;
    let c = &t.machines;
    let positions = vec![position; c.ids.len()];
    tx.execute(
        include_str!("../sql/insert_machines.sql"),
        &[&key, &c.ids, &c.line_ids, &c.numbers, &c.machine_types, &c.descriptions, &c.sensors, &positions],
    )
    .await?;
    let c = &t.sensors;
    let positions = vec![position; c.ids.len()];
    tx.execute(
        include_str!("../sql/insert_sensors.sql"),
        &[&key, &c.ids, &c.names, &c.machine_ids, &c.kinds, &c.units, &c.normal_min, &c.normal_max, &positions],
    )
    .await?;

    let ms = &groups.layout.layout.machines()[groups.layout.plant().machines.clone()];
    let mut counts: BTreeMap<&Group, (i32, i32)> = BTreeMap::new();
    for m in ms {
        let Some(g) = groups.machine_group(&m.id) else { continue };
        let c = counts.entry(g).or_default();
        c.0 += 1;
        c.1 += m.sensors.len() as i32;
    }
    let lines: Vec<&str> = counts.keys().map(|g| g.line_id.as_str()).collect();
    let types: Vec<&str> = counts.keys().map(|g| g.machine_type.as_str()).collect();
    let machines: Vec<i32> = counts.values().map(|c| c.0).collect();
    let sensors: Vec<i32> = counts.values().map(|c| c.1).collect();
    tx.execute(include_str!("../sql/insert_groups.sql"), &[&key, &lines, &types, &machines, &sensors]).await?;
    Ok(())
}
