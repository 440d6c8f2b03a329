//! Independent random streams derived from the run's seed, one per plant, machine and sensor.
//!
//! Each stream depends only on (seed, plant number, purpose, index), never on the order in
//! which other streams are used. That is what makes a plant's output independent of how
//! many plants run or on which thread, keeps a sensor's noise identical whether or not
//! faults are injected elsewhere, and lets one machine be simulated alone.

use rand::SeedableRng;
use rand_xoshiro::Xoshiro256PlusPlus;

/// The small, fast generator used everywhere (Xoshiro256++, 32 bytes of state).
pub(crate) type SimRng = Xoshiro256PlusPlus;

#[derive(Debug, Clone, Copy)]
#[repr(u64)]
pub(crate) enum Purpose {
    Plant = 1,
    Faults = 2,
    Machine = 3,
    Sensor = 4,
}

/// The SplitMix64 finaliser: a bijection on u64 that spreads every input bit.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

pub(crate) fn stream(seed: u64, plant: u16, purpose: Purpose, index: u64) -> SimRng {
    let key = mix(mix(mix(seed) ^ u64::from(plant)) ^ purpose as u64) ^ index;
    SimRng::seed_from_u64(mix(key))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng;

    #[test]
    fn streams_differ_by_every_part_of_their_key() {
        let first = |mut rng: SimRng| rng.next_u64();
        let base = first(stream(1, 1, Purpose::Sensor, 0));
        assert_eq!(base, first(stream(1, 1, Purpose::Sensor, 0)));
        for other in [
            stream(2, 1, Purpose::Sensor, 0),
            stream(1, 2, Purpose::Sensor, 0),
            stream(1, 1, Purpose::Machine, 0),
            stream(1, 1, Purpose::Sensor, 1),
        ] {
            assert_ne!(base, first(other));
        }
    }
}
