//! What the Ruby side's events ask of the native client: whether to make
//! events at all, and whether a loaded flag asks for impressions.

use super::Client;

impl Client {
    /// `_events=(on)`: whether someone listens to this client's changes and
    /// failures (listeners, or ActiveSupport). Off, no load compares flags
    /// and no event is queued.
    pub(super) fn set_events(&self, on: bool) {
        self.engine.set_events_wanted(on);
    }

    /// `_impression_flags?`: whether a loaded flag asks for impression
    /// events (ActiveSupport's `impression.forkflag` routes evaluations
    /// through the general path only then).
    pub(super) fn has_impression_flags(&self) -> bool {
        self.engine.load().has_impression_flags()
    }
}
