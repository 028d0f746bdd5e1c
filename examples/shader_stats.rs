//! What the Vulkan driver's compiler made of the attention kernels: registers, spills,
//! instruction counts and whatever else the driver reports through
//! VK_KHR_pipeline_executable_properties, for the pipelines a SmolLM2-shaped decode step
//! builds (dense and AURA attention per query head and per GQA group, single-pass,
//! split-K with the fused merge and with the merge dispatch, with and without the fused
//! encode; the merge; the AURA encoder).
//!
//! Each key's WGSL is composed as the engine does, translated to SPIR-V by naga with the
//! options wgpu uses when shader checks are off, and compiled by the driver directly
//! (through ash, outside wgpu: wgpu cannot ask for pipeline statistics).
//!
//! `cargo run --release --example shader_stats -- [--kv aura4v4] [--f16 on|off] [--subgroups on|off] [--filter NAME]`

mod common;

use std::ffi::CStr;

use ash::vk;
use aura::gpu::registry::{compose, PipelineKey};
use aura::gpu::Variant;
use aura::kernels::*;
use aura::kv::scheme::KvScheme;
use clap::Parser;

#[derive(Parser)]
#[command(
    about = "Driver compile statistics (registers, spills, instructions) of the decode attention kernels, through VK_KHR_pipeline_executable_properties"
)]
struct Args {
    /// KV scheme whose AURA kernels to compile (aura{K}v{V})
    #[arg(long, default_value = "aura4v4")]
    kv: String,
    /// f16 variants: on or off
    #[arg(long, default_value = "on")]
    f16: String,
    /// Subgroup reductions: on or off
    #[arg(long, default_value = "on")]
    subgroups: String,
    /// Head dim
    #[arg(long, default_value_t = 64)]
    head_dim: usize,
    /// Query heads per KV head
    #[arg(long, default_value_t = 3)]
    group: usize,
    /// Only keys whose description contains this
    #[arg(long)]
    filter: Option<String>,
    /// Also write each pipeline's internal representations (whatever the driver offers,
    /// e.g. its disassembly) into this directory, one file per key and representation
    #[arg(long)]
    ir: Option<std::path::PathBuf>,
    /// Vulkan device index (default: the first that is not a CPU)
    #[arg(long)]
    device: Option<usize>,
}

fn keys(v: Variant, hd: usize, group: usize, kb: u32, vb: u32) -> Vec<(String, PipelineKey)> {
    let mut out = Vec::new();
    for g in [1, group] {
        out.push((format!("dense single G{g}"), attn_key(v, hd, g, 0, false)));
        out.push((format!("dense split64 fused-merge G{g}"), attn_key(v, hd, g, 64, true)));
        out.push((format!("dense split64 G{g}"), attn_key(v, hd, g, 64, false)));
        for enc in [false, true] {
            let e = if enc { " +encode" } else { "" };
            let all = (hd / 4) as u32;
            // (Key centering's fit where a block is one tile, its mean on every pair:
            // SmolLM2's RoPE, the engine's defaults.)
            let cx = aura_centering_cx(64, hd, 100000.0, true, true);
            let cz = aura_centering_cz(hd, 100000.0, true, false);
            out.push((format!("aura single G{g}{e}"), attn_aura_key(v, hd, g, 0, false, kb, vb, enc, all, cz)));
            out.push((
                format!("aura split64 fused-merge G{g}{e}"),
                attn_aura_key(v, hd, g, 64, true, kb, vb, enc, cx, cz),
            ));
            out.push((format!("aura split64 G{g}{e}"), attn_aura_key(v, hd, g, 64, false, kb, vb, enc, cx, cz)));
        }
    }
    out.push(("merge dense".into(), merge_key(v, hd, false)));
    out.push(("merge aura".into(), merge_key(v, hd, true)));
    out.push(("kv_encode_aura".into(), kv_encode_key(v, hd)));
    out
}

fn spirv(key: &PipelineKey, v: Variant) -> (Vec<u32>, naga::Module) {
    let src = compose(key);
    let module = naga::front::wgsl::parse_str(&src).unwrap_or_else(|e| panic!("{}", e.emit_to_string(&src)));
    let mut caps = naga::valid::Capabilities::SHADER_FLOAT16_IN_FLOAT32;
    caps.set(naga::valid::Capabilities::SHADER_FLOAT16, v.f16);
    caps.set(naga::valid::Capabilities::SUBGROUP, v.subgroups);
    let mut val = naga::valid::Validator::new(naga::valid::ValidationFlags::all(), caps);
    val.subgroup_stages(naga::valid::ShaderStages::COMPUTE);
    val.subgroup_operations(naga::valid::SubgroupOperationSet::BASIC | naga::valid::SubgroupOperationSet::ARITHMETIC);
    let info = val.validate(&module).unwrap_or_else(|e| panic!("{}", e.emit_to_string(&src)));
    // What wgpu-hal's Vulkan backend does for a trusted module with every runtime check off.
    let options = naga::back::spv::Options {
        lang_version: (1, 6),
        flags: naga::back::spv::WriterFlags::empty(),
        // (the WGSL group and binding numbers as they are)
        fake_missing_bindings: true,
        bounds_check_policies: naga::proc::BoundsCheckPolicies {
            index: naga::proc::BoundsCheckPolicy::Unchecked,
            buffer: naga::proc::BoundsCheckPolicy::Unchecked,
            image_load: naga::proc::BoundsCheckPolicy::Unchecked,
            binding_array: naga::proc::BoundsCheckPolicy::Unchecked,
        },
        zero_initialize_workgroup_memory: naga::back::spv::ZeroInitializeWorkgroupMemoryMode::None,
        force_loop_bounding: false,
        ray_query_initialization_tracking: false,
        trace_ray_argument_validation: false,
        task_dispatch_limits: None,
        mesh_shader_primitive_indices_clamp: false,
        emit_int_div_checks: false,
        ..Default::default()
    };
    let pipe = naga::back::spv::PipelineOptions {
        shader_stage: naga::ShaderStage::Compute,
        entry_point: key.kernel.stem().to_string(),
    };
    let words = naga::back::spv::write_vec(&module, &info, &options, Some(&pipe)).expect("SPIR-V out");
    (words, module)
}

/// Descriptor set layouts (groups 0 and 1) from the module's resource bindings.
fn set_layouts(dev: &ash::Device, m: &naga::Module) -> Vec<vk::DescriptorSetLayout> {
    let mut sets: Vec<Vec<vk::DescriptorSetLayoutBinding>> = vec![Vec::new(), Vec::new()];
    for (_, g) in m.global_variables.iter() {
        let Some(b) = &g.binding else { continue };
        let ty = match g.space {
            naga::AddressSpace::Uniform => vk::DescriptorType::UNIFORM_BUFFER,
            naga::AddressSpace::Storage { .. } => vk::DescriptorType::STORAGE_BUFFER,
            _ => continue,
        };
        sets[b.group as usize].push(
            vk::DescriptorSetLayoutBinding::default()
                .binding(b.binding)
                .descriptor_type(ty)
                .descriptor_count(1)
                .stage_flags(vk::ShaderStageFlags::COMPUTE),
        );
    }
    sets.iter()
        .map(|b| unsafe {
            dev.create_descriptor_set_layout(&vk::DescriptorSetLayoutCreateInfo::default().bindings(b), None)
                .expect("descriptor set layout")
        })
        .collect()
}

/// Internal representations of executable `i` into `dir` (two-pass query: sizes, then data).
unsafe fn write_ir(
    pep: &ash::khr::pipeline_executable_properties::Device,
    pipe: vk::Pipeline,
    i: u32,
    dir: &std::path::Path,
    desc: &str,
) {
    let info = vk::PipelineExecutableInfoKHR::default().pipeline(pipe).executable_index(i);
    let reps = pep.get_pipeline_executable_internal_representations(&info).expect("internal representations");
    if reps.is_empty() {
        println!("  ({desc}: the driver offers no internal representation)");
        return;
    }
    let mut bufs: Vec<Vec<u8>> = reps.iter().map(|r| vec![0u8; r.data_size]).collect();
    let mut with_data: Vec<_> = reps
        .iter()
        .zip(bufs.iter_mut())
        .map(|(r, b)| vk::PipelineExecutableInternalRepresentationKHR {
            data_size: r.data_size,
            p_data: b.as_mut_ptr().cast(),
            ..Default::default()
        })
        .collect();
    let mut n = with_data.len() as u32;
    let f = pep.fp().get_pipeline_executable_internal_representations_khr;
    let r = f(pep.device(), &info, &mut n, with_data.as_mut_ptr());
    assert!(r == vk::Result::SUCCESS || r == vk::Result::INCOMPLETE, "internal representations: {r:?}");
    std::fs::create_dir_all(dir).expect("--ir directory");
    for (k, (rep, buf)) in with_data.iter().zip(&bufs).enumerate() {
        let name = CStr::from_ptr(rep.name.as_ptr()).to_string_lossy().into_owned();
        let file = format!(
            "{}.{k}.{}.txt",
            desc.replace([' ', '+'], "_"),
            name.replace(|c: char| !c.is_ascii_alphanumeric(), "_")
        );
        let bytes =
            if rep.is_text != 0 { &buf[..buf.iter().position(|&c| c == 0).unwrap_or(buf.len())] } else { &buf[..] };
        std::fs::write(dir.join(&file), bytes).expect("write internal representation");
        println!("  wrote {file} ({} bytes)", bytes.len());
    }
}

/// A statistic's value. NVIDIA's driver (580) reports "Local Memory Size" as 2^36 plus the
/// bytes; the bytes are shown.
fn value(name: &str, s: &vk::PipelineExecutableStatisticKHR) -> String {
    unsafe {
        match s.format {
            vk::PipelineExecutableStatisticFormatKHR::BOOL32 => (s.value.b32 != 0).to_string(),
            vk::PipelineExecutableStatisticFormatKHR::INT64 => s.value.i64.to_string(),
            vk::PipelineExecutableStatisticFormatKHR::UINT64 if name == "Local Memory Size" => {
                (s.value.u64 & ((1 << 36) - 1)).to_string()
            }
            vk::PipelineExecutableStatisticFormatKHR::UINT64 => s.value.u64.to_string(),
            vk::PipelineExecutableStatisticFormatKHR::FLOAT64 => format!("{:.3}", s.value.f64),
            _ => "?".into(),
        }
    }
}

fn main() {
    let args = Args::parse();
    common::run_main(async move { run(args) });
}

fn run(args: Args) -> aura::Result<()> {
    let on = |flag: &str, v: &str| Ok::<_, aura::Error>(common::on_off(flag, &Some(v.to_string()))? == Some(true));
    let v = Variant { f16: on("f16", &args.f16)?, subgroups: on("subgroups", &args.subgroups)? };
    let KvScheme::Aura { k_bits, v_bits } = KvScheme::parse(&args.kv)? else {
        return Err(aura::Error::InvalidArgument(format!("--kv {}: not an AURA scheme", args.kv)));
    };
    let (kb, vb) = (k_bits as u32, v_bits as u32);
    // Every module to SPIR-V first (a naga failure shows before any driver work).
    let mods: Vec<_> = keys(v, args.head_dim, args.group, kb, vb)
        .into_iter()
        .filter(|(desc, _)| args.filter.as_ref().is_none_or(|f| desc.contains(f.as_str())))
        .map(|(desc, key)| {
            let (words, module) = spirv(&key, v);
            (desc, key, words, module)
        })
        .collect();
    println!("{} modules translated to SPIR-V", mods.len());
    unsafe {
        let entry = ash::Entry::load().expect("no Vulkan loader (libvulkan.so.1)");
        let app = vk::ApplicationInfo::default().api_version(vk::API_VERSION_1_3);
        let inst = entry
            .create_instance(&vk::InstanceCreateInfo::default().application_info(&app), None)
            .expect("Vulkan instance");
        let pds = inst.enumerate_physical_devices().expect("physical devices");
        let pick = args.device.unwrap_or_else(|| {
            pds.iter()
                .position(|&p| inst.get_physical_device_properties(p).device_type != vk::PhysicalDeviceType::CPU)
                .unwrap_or(0)
        });
        let pd = *pds.get(pick).expect("--device out of range");
        let props = inst.get_physical_device_properties(pd);
        let name = CStr::from_ptr(props.device_name.as_ptr()).to_string_lossy().into_owned();
        println!("device: {name} (driver version {:#x})", props.driver_version);
        let exts = inst.enumerate_device_extension_properties(pd).expect("device extensions");
        let want = ash::khr::pipeline_executable_properties::NAME;
        if !exts.iter().any(|e| CStr::from_ptr(e.extension_name.as_ptr()) == want) {
            return Err(aura::Error::Unsupported(format!("{name} lacks {}", want.to_string_lossy())));
        }
        let qf = inst
            .get_physical_device_queue_family_properties(pd)
            .iter()
            .position(|q| q.queue_flags.contains(vk::QueueFlags::COMPUTE))
            .expect("a compute queue") as u32;
        let mut pef =
            vk::PhysicalDevicePipelineExecutablePropertiesFeaturesKHR::default().pipeline_executable_info(true);
        let mut f11 = vk::PhysicalDeviceVulkan11Features::default()
            .storage_buffer16_bit_access(v.f16)
            .uniform_and_storage_buffer16_bit_access(v.f16);
        let mut f12 = vk::PhysicalDeviceVulkan12Features::default().shader_float16(v.f16);
        let prio = [1.0f32];
        let qci = [vk::DeviceQueueCreateInfo::default().queue_family_index(qf).queue_priorities(&prio)];
        let ext_names = [want.as_ptr()];
        let dci = vk::DeviceCreateInfo::default()
            .queue_create_infos(&qci)
            .enabled_extension_names(&ext_names)
            .push_next(&mut pef)
            .push_next(&mut f11)
            .push_next(&mut f12);
        let dev = inst.create_device(pd, &dci, None).expect("Vulkan device");
        let pep = ash::khr::pipeline_executable_properties::Device::new(&inst, &dev);
        for (desc, key, words, module) in mods {
            let sm = dev
                .create_shader_module(&vk::ShaderModuleCreateInfo::default().code(&words), None)
                .expect("shader module");
            let layouts = set_layouts(&dev, &module);
            let pl = dev
                .create_pipeline_layout(&vk::PipelineLayoutCreateInfo::default().set_layouts(&layouts), None)
                .expect("pipeline layout");
            let entry_name = std::ffi::CString::new(key.kernel.stem()).unwrap();
            let stage = vk::PipelineShaderStageCreateInfo::default()
                .stage(vk::ShaderStageFlags::COMPUTE)
                .module(sm)
                .name(&entry_name);
            let ir = if args.ir.is_some() {
                vk::PipelineCreateFlags::CAPTURE_INTERNAL_REPRESENTATIONS_KHR
            } else {
                vk::PipelineCreateFlags::empty()
            };
            let cpi = [vk::ComputePipelineCreateInfo::default()
                .stage(stage)
                .layout(pl)
                .flags(vk::PipelineCreateFlags::CAPTURE_STATISTICS_KHR | ir)];
            let pipe = dev
                .create_compute_pipelines(vk::PipelineCache::null(), &cpi, None)
                .map_err(|(_, e)| e)
                .expect("compute pipeline")[0];
            let execs = pep
                .get_pipeline_executable_properties(&vk::PipelineInfoKHR::default().pipeline(pipe))
                .expect("executable properties");
            let mut line = format!("{desc:<36}");
            for i in 0..execs.len() as u32 {
                let stats = pep
                    .get_pipeline_executable_statistics(
                        &vk::PipelineExecutableInfoKHR::default().pipeline(pipe).executable_index(i),
                    )
                    .expect("statistics");
                for s in &stats {
                    let n = CStr::from_ptr(s.name.as_ptr()).to_string_lossy();
                    line.push_str(&format!(" | {n}: {}", value(&n, s)));
                }
                if let Some(dir) = &args.ir {
                    write_ir(&pep, pipe, i, dir, &desc);
                }
            }
            println!("{line}");
            dev.destroy_pipeline(pipe, None);
            dev.destroy_pipeline_layout(pl, None);
            for l in layouts {
                dev.destroy_descriptor_set_layout(l, None);
            }
            dev.destroy_shader_module(sm, None);
        }
        dev.destroy_device(None);
        inst.destroy_instance(None);
    }
    Ok(())
}
