//! Conformance cases for [`RecordingStore`].
