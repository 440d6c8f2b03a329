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
