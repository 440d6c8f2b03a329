//! The layout tables (`cloud.plants`, `lines`, `machines`, `sensors`, `groups`): a plant's
//! rows replaced whole when its layout changes.

use std::collections::BTreeMap;

use anyhow::Result;
use eventlog::Transaction;

use crate::layouts::{Group, PlantGroups};

pub async fn write(tx: &Transaction<'_>, plant: u16, groups: &PlantGroups, position: i64) -> Result<()> {
    let key = plant as i16;
    let l = &groups.layout;
    let p = l.plant();
    tx.execute(include_str!("../sql/delete_layout.sql"), &[&key]).await?;
    tx.execute(
        include_str!("../sql/insert_plant.sql"),
        &[
            &key,
            &p.id,
            &p.name,
            &(p.lines.len() as i32),
            &(p.machines.len() as i32),
            &(p.sensors.len() as i32),
            &position,
        ],
    )
    .await?;
    let lines = &l.layout.lines()[p.lines.clone()];
    let ids: Vec<&str> = lines.iter().map(|x| x.id.as_str()).collect();
    let numbers: Vec<i32> = lines.iter().map(|x| i32::from(x.number)).collect();
    let machines: Vec<i32> = lines.iter().map(|x| x.machines.len() as i32).collect();
    let sensors: Vec<i32> = lines.iter().map(|x| x.sensors.len() as i32).collect();
    let positions = vec![position; lines.len()];
    tx.execute(include_str!("../sql/insert_lines.sql"), &[&key, &ids, &numbers, &machines, &sensors, &positions])
        .await?;

    let ms = &l.layout.machines()[p.machines.clone()];
    let ids: Vec<&str> = ms.iter().map(|m| m.id.as_str()).collect();
    let line_ids: Vec<&str> = ms.iter().map(|m| l.layout.lines()[m.line].id.as_str()).collect();
    let numbers: Vec<i32> = ms.iter().map(|m| i32::from(m.number)).collect();
    let types: Vec<&str> = ms.iter().map(|m| l.layout.machine_type_of(m).name.as_str()).collect();
    let descriptions: Vec<&str> = ms.iter().map(|m| l.layout.machine_type_of(m).description.as_str()).collect();
    let sensors: Vec<i32> = ms.iter().map(|m| m.sensors.len() as i32).collect();
    let positions = vec![position; ms.len()];
    tx.execute(
        include_str!("../sql/insert_machines.sql"),
        &[&key, &ids, &line_ids, &numbers, &types, &descriptions, &sensors, &positions],
    )
    .await?;

    let n = p.sensors.len();
    let mut ids = Vec::with_capacity(n);
    let mut names = Vec::with_capacity(n);
    let mut machine_ids = Vec::with_capacity(n);
    let mut kinds = Vec::with_capacity(n);
    let mut units = Vec::with_capacity(n);
    let mut mins = Vec::with_capacity(n);
    let mut maxs = Vec::with_capacity(n);
    for ix in 0..n {
        let s = l.sensor(ix);
        ids.push(s.id() as i32);
        names.push(s.name().to_owned());
        machine_ids.push(s.machine.id.clone());
        kinds.push(s.kind().to_owned());
        units.push(s.unit().to_owned());
        let (lo, hi) = s.normal_range();
        mins.push(lo);
        maxs.push(hi);
    }
    let positions = vec![position; n];
    tx.execute(
        include_str!("../sql/insert_sensors.sql"),
        &[&key, &ids, &names, &machine_ids, &kinds, &units, &mins, &maxs, &positions],
    )
    .await?;

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
