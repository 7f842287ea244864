//! Tenant organisations: creation (registration and the demo tenant) and their public shape.
//! There are no tenant routes: registration is in `api::auth`, which calls [`store`]. The shape
//! is in [`dto`], the SQL in [`store`].

mod dto;
mod store;

pub use dto::{DemoLogin, NewOrganization, Organization};
pub use store::{create_organization, load_organization, seed_demo_tenant, slugify};
