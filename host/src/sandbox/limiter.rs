//! The guest's memory and table limits, counted across all of its memories
//! and tables together.
//!
//! wasmtime's stock `StoreLimits` bounds each linear memory (and each table)
//! on its own, so a component that defines several memories, or instantiates
//! several core modules, could take the limit several times over. This
//! limiter keeps running totals: wasmtime reports every memory's and table's
//! initial allocation as growth from zero, and memories and tables never
//! shrink, so the sum of the growth it allowed is what the guest holds.

use wasmtime::ResourceLimiter;

/// Limits for one migration's store, with the totals so far.
#[derive(Debug, Clone)]
pub(crate) struct GuestLimiter {
    max_memory_bytes: usize,
    max_table_elements: usize,
    max_instances: usize,
    max_tables: usize,
    max_memories: usize,
    memory_bytes: usize,
    table_elements: usize,
}

impl GuestLimiter {
    /// Totals of `max_memory_bytes` over every memory and
    /// `max_table_elements` over every table; at most `max_instances`
    /// instances (and a few tables and memories per instance).
    pub(crate) fn new(max_memory_bytes: usize, max_table_elements: usize, max_instances: usize) -> Self {
        GuestLimiter {
            max_memory_bytes,
            max_table_elements,
            max_instances,
            max_tables: max_instances.saturating_mul(4),
            max_memories: max_instances,
            memory_bytes: 0,
            table_elements: 0,
        }
    }

    /// Bytes of linear memory the guest holds, all memories together.
    #[cfg(test)]
    pub(crate) fn memory_bytes(&self) -> usize {
        self.memory_bytes
    }
}

/// Start of every refusal's text, so the trap description can name the limit.
pub(crate) const MEMORY_LIMIT_HIT: &str = "memory limit exceeded";
/// Same, for tables.
pub(crate) const TABLE_LIMIT_HIT: &str = "table limit exceeded";

impl ResourceLimiter for GuestLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _max: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let total = self.memory_bytes.saturating_add(desired.saturating_sub(current));
        if total > self.max_memory_bytes {
            // A trap rather than a failed `memory.grow`: the guest learns
            // nothing useful from -1, and the operator needs the limit named.
            return Err(wasmtime::Error::msg(format!(
                "{MEMORY_LIMIT_HIT}: growing to {total} bytes across all of the guest's memories; the limit is \
                 {} bytes",
                self.max_memory_bytes
            )));
        }
        self.memory_bytes = total;
        Ok(true)
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        _max: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let total = self.table_elements.saturating_add(desired.saturating_sub(current));
        if total > self.max_table_elements {
            return Err(wasmtime::Error::msg(format!(
                "{TABLE_LIMIT_HIT}: growing to {total} elements across all of the guest's tables; the limit is {}",
                self.max_table_elements
            )));
        }
        self.table_elements = total;
        Ok(true)
    }

    fn instances(&self) -> usize {
        self.max_instances
    }

    fn tables(&self) -> usize {
        self.max_tables
    }

    fn memories(&self) -> usize {
        self.max_memories
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memories_share_one_budget() {
        let mut l = GuestLimiter::new(100, 10, 4);
        // Two memories of 60 bytes each: the second no longer fits.
        assert!(l.memory_growing(0, 60, None).unwrap());
        let err = l.memory_growing(0, 60, None).unwrap_err().to_string();
        assert!(err.starts_with(MEMORY_LIMIT_HIT) && err.contains("120 bytes"), "{err}");
        // Growing the first by 40 reaches the limit exactly.
        assert!(l.memory_growing(60, 100, None).unwrap());
        assert_eq!(l.memory_bytes(), 100);
        assert!(l.memory_growing(100, 101, None).is_err());
    }

    #[test]
    fn tables_share_one_budget() {
        let mut l = GuestLimiter::new(100, 10, 4);
        assert!(l.table_growing(0, 6, None).unwrap());
        assert!(l.table_growing(0, 4, None).unwrap());
        let err = l.table_growing(4, 5, None).unwrap_err().to_string();
        assert!(err.starts_with(TABLE_LIMIT_HIT), "{err}");
        assert_eq!((l.instances(), l.tables(), l.memories()), (4, 16, 4));
    }
}
