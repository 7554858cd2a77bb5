//! The X/Y/Z grid (`easel grid`): A1111's value syntax for each axis, the order cells
//! are generated in, and the labelled grid image. Applying a value to generation
//! settings is the front end's job; this module knows nothing of models.

pub mod annotate;
pub mod axis;
pub mod canvas;
pub mod csv_fields;
pub mod font;
pub mod layout;
pub mod python_float;
pub mod range_syntax;
pub mod runner;

pub use axis::{prompt_search_replace, Axis, AxisKind, AxisValue, ValueType};
pub use canvas::RgbImage;
pub use layout::{CellIndex, GridPlan};
pub use runner::{run_grid, GridCell, GridOutput};
