//! The status values the read models carry, by name. The projections write them with
//! `as_str`; readers interpret them with `parse`. An anomaly's state and severity are the
//! domain's own (`domain::anomaly::AnomalyState`, `domain::events::Severity`).

/// A sensor's status in `sensor_state`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SensorStatus {
    /// Reporting, inside its normal range.
    Ok = 0,
    /// Reporting, outside its normal range.
    Warning = 1,
    /// Part of an anomaly that is not resolved.
    Anomalous = 2,
    /// No reading for the plant's stale time while the plant's other sensors kept reporting.
    Stale = 3,
}

impl SensorStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            SensorStatus::Ok => "ok",
            SensorStatus::Warning => "warning",
            SensorStatus::Anomalous => "anomalous",
            SensorStatus::Stale => "stale",
        }
    }

    pub fn parse(s: &str) -> Option<SensorStatus> {
        Some(match s {
            "ok" => SensorStatus::Ok,
            "warning" => SensorStatus::Warning,
            "anomalous" => SensorStatus::Anomalous,
            "stale" => SensorStatus::Stale,
            _ => return None,
        })
    }
}

/// A machine's status in `machine_status`: the colour of its tile, the first that applies
/// of anomaly > stale > service > warning > ok.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MachineCondition {
    /// It has open anomalies.
    Anomaly,
    /// Most of its sensors are stale.
    Stale,
    /// It is due for service.
    Service,
    /// Some sensor is outside its normal range or anomalous.
    Warning,
    Ok,
}

impl MachineCondition {
    pub fn as_str(self) -> &'static str {
        match self {
            MachineCondition::Anomaly => "anomaly",
            MachineCondition::Stale => "stale",
            MachineCondition::Service => "service",
            MachineCondition::Warning => "warning",
            MachineCondition::Ok => "ok",
        }
    }

    pub fn parse(s: &str) -> Option<MachineCondition> {
        Some(match s {
            "anomaly" => MachineCondition::Anomaly,
            "stale" => MachineCondition::Stale,
            "service" => MachineCondition::Service,
            "warning" => MachineCondition::Warning,
            "ok" => MachineCondition::Ok,
            _ => return None,
        })
    }
}

/// A work order's state in `maintenance_log`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OrderState {
    Scheduled,
    Performed,
}

impl OrderState {
    pub fn as_str(self) -> &'static str {
        match self {
            OrderState::Scheduled => "scheduled",
            OrderState::Performed => "performed",
        }
    }

    pub fn parse(s: &str) -> Option<OrderState> {
        Some(match s {
            "scheduled" => OrderState::Scheduled,
            "performed" => OrderState::Performed,
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_value_reads_back_as_itself() {
        for s in [SensorStatus::Ok, SensorStatus::Warning, SensorStatus::Anomalous, SensorStatus::Stale] {
            assert_eq!(SensorStatus::parse(s.as_str()), Some(s));
        }
        for m in [
            MachineCondition::Anomaly,
            MachineCondition::Stale,
            MachineCondition::Service,
            MachineCondition::Warning,
            MachineCondition::Ok,
        ] {
            assert_eq!(MachineCondition::parse(m.as_str()), Some(m));
        }
        for o in [OrderState::Scheduled, OrderState::Performed] {
            assert_eq!(OrderState::parse(o.as_str()), Some(o));
        }
        assert_eq!(SensorStatus::parse("OK"), None);
        assert_eq!(MachineCondition::parse(""), None);
    }
}

/// A plant node task's state in `node_tasks`, as the node's supervisor sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskState {
    /// Started, not yet at work.
    Starting,
    Running,
    /// At work but its last attempt failed; it retries by itself.
    Failing,
    /// It died and waits to be started again.
    Restarting,
    /// Stopped with the node.
    Stopped,
}

impl TaskState {
    pub fn as_str(self) -> &'static str {
        match self {
            TaskState::Starting => "starting",
            TaskState::Running => "running",
            TaskState::Failing => "failing",
            TaskState::Restarting => "restarting",
            TaskState::Stopped => "stopped",
        }
    }

    pub fn parse(s: &str) -> Option<TaskState> {
        Some(match s {
            "starting" => TaskState::Starting,
            "running" => TaskState::Running,
            "failing" => TaskState::Failing,
            "restarting" => TaskState::Restarting,
            "stopped" => TaskState::Stopped,
            _ => return None,
        })
    }

    /// Whether the task is not doing its work: a person must be told.
    pub fn is_down(self) -> bool {
        matches!(self, TaskState::Failing | TaskState::Restarting | TaskState::Stopped)
    }
}

/// What a plant node task does, in the words a screen uses ("anomaly detection stopped
/// since …"). Unknown tasks (a newer node's) are shown by their name.
pub fn task_label(task: &str) -> &str {
    match task {
        "writer" => "storing uploads",
        "live projection" => "live read models",
        "history projection" => "history and trends",
        "monitor" => "anomaly detection",
        "scorer" => "maintenance predictions",
        "retention" => "data retention",
        "forwarder" => "forwarding to the cloud",
        other => other,
    }
}
