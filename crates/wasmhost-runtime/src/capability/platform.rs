//! `wasmhost:platform/json` and `wasmhost:platform/validation`: native JSON
//! and JSON Schema for guests (`wasmhost-platform`). The app state is the
//! app's schema cache, which the route schemas of its manifest share.

use std::sync::Arc;

use anyhow::Result;
use wasmhost_platform::{PlatformCtx, PlatformView, SchemaCache};
use wasmtime::component::Linker;

use super::Capability;
use crate::store::StoreData;
use wasmhost_spec::AppSpec;

/// The platform capability.
pub struct Platform;

impl Capability for Platform {
    type App = PlatformCtx;
    type Instance = PlatformCtx;

    fn app(spec: &AppSpec, previous: Option<&PlatformCtx>) -> Result<PlatformCtx> {
        // Compiled schemas are keyed by their text: a new version may reuse them.
        let schemas = previous.map_or_else(|| Arc::new(SchemaCache::default()), |previous| previous.schemas().clone());
        Ok(PlatformCtx::new(Arc::from(spec.name.as_str()), schemas))
    }

    fn instance(app: &PlatformCtx) -> Result<PlatformCtx> {
        Ok(app.clone())
    }

    fn add_to_linker(linker: &mut Linker<StoreData>) -> Result<()> {
        wasmhost_platform::add_to_linker(linker, |data: &mut StoreData| PlatformView {
            ctx: &data.capabilities.platform,
            table: &mut data.table,
        })
    }
}
