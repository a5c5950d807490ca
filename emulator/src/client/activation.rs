//! Capability exchange and connection finalization, client side (MS-RDPBCGR 2.2.1.13 –
//! 2.2.1.22): the server's Demand Active answered with a Confirm Active, then Synchronize,
//! Control Cooperate, Control Request Control and Font List; the session is active when the
//! server's Font Map arrives. A Deactivate All followed by a new Demand Active (the
//! deactivation-reactivation sequence, 1.3.1.3) starts over.

use ironrdp_pdu::rdp::capability_sets::{self, CapabilitySet, ClientConfirmActive, DemandActive};
use ironrdp_pdu::rdp::client_info::CompressionType;
use ironrdp_pdu::rdp::finalization_messages::{
    ControlAction, ControlPdu, FontPdu, SequenceFlags, SynchronizePdu,
};
use ironrdp_pdu::rdp::headers::{
    CompressionFlags, ShareControlHeader, ShareControlPdu, ShareDataHeader, ShareDataPdu,
    StreamPriority,
};
use rdpele_proto::envelope::SendDataDirection;
use tokio::io::{AsyncRead, AsyncWrite};

use super::error::ClientError;
use super::server_pdu::{classify, Phase, ServerPdu};
use crate::transport::{queue_io, Channels, Framed};

/// The desktop the client asks for, in the Client Core Data and the Bitmap capability set.
pub(super) const DESKTOP: (u16, u16) = (1024, 768);
/// TS_FONT_LIST_PDU entrySize: "SHOULD be set to 0x0032" (MS-RDPBCGR 2.2.1.18.1).
const FONT_LIST_ENTRY_SIZE: u16 = 0x0032;
/// mstsc's sourceDescriptor in the Confirm Active.
const SOURCE_DESCRIPTOR: &str = "MSTSC";

/// Where activation stopped.
#[derive(Debug)]
pub(super) enum Activation {
    /// Font Map received: the session is active.
    Active,
    /// The server disconnected first (Ultimatum).
    Disconnected,
}

/// Runs activation until the session is active or the server disconnects; Set Error Info
/// codes seen on the way go to `error_info`.
pub(super) async fn run<S: AsyncRead + AsyncWrite + Unpin>(
    framed: &mut Framed<S>,
    channels: Channels,
    error_info: &mut Option<u32>,
) -> Result<Activation, ClientError> {
    let mut demand = None;
    loop {
        let stage = if demand.is_none() {
            "Demand Active"
        } else {
            "connection finalization"
        };
        let frame = framed.read_pdu(stage).await?;
        match classify(stage, &frame, Phase::Session)? {
            ServerPdu::ShareControl(header) => match header.share_control_pdu {
                ShareControlPdu::ServerDemandActive(server) => {
                    let share_id = header.share_id;
                    confirm_and_finalize(framed, channels, share_id, &server.pdu).await?;
                    demand = Some(share_id);
                }
                ShareControlPdu::Data(ShareDataHeader {
                    share_data_pdu: ShareDataPdu::FontMap(_),
                    ..
                }) if demand.is_some() => return Ok(Activation::Active),
                // The server's Synchronize, Cooperate and Granted Control, and anything else
                // a host sends on the way (Monitor Layout, Save Session Info, Deactivate All).
                _ => {}
            },
            ServerPdu::ErrorInfo(code) => *error_info = Some(code),
            ServerPdu::Disconnect => return Ok(Activation::Disconnected),
            ServerPdu::Licensing(_) | ServerPdu::Other => {}
        }
    }
}

/// Confirm Active and the client's four finalization PDUs, sent back to back as mstsc does.
async fn confirm_and_finalize<S: AsyncRead + AsyncWrite + Unpin>(
    framed: &mut Framed<S>,
    channels: Channels,
    share_id: u32,
    demand: &DemandActive,
) -> Result<(), ClientError> {
    let confirm = ShareControlHeader {
        share_id,
        pdu_source: channels.user_id,
        share_control_pdu: ShareControlPdu::ClientConfirmActive(ClientConfirmActive {
            originator_id: capability_sets::SERVER_CHANNEL_ID,
            pdu: DemandActive {
                source_descriptor: SOURCE_DESCRIPTOR.to_owned(),
                capability_sets: capabilities(desktop(demand)),
            },
        }),
    };
    // The Confirm Active and the four finalization PDUs need no answer in between: they leave
    // in one write with the Font List.
    queue_io(
        framed,
        "Confirm Active",
        SendDataDirection::Request,
        channels,
        &confirm,
    )?;
    let share_data = |pdu| ShareControlHeader {
        share_id,
        pdu_source: channels.user_id,
        share_control_pdu: ShareControlPdu::Data(ShareDataHeader {
            share_data_pdu: pdu,
            stream_priority: StreamPriority::Medium,
            compression_flags: CompressionFlags::empty(),
            compression_type: CompressionType::K8,
        }),
    };
    let finalization = [
        (
            "Synchronize",
            // MS-RDPBCGR 2.2.1.14.1: targetUser is the server's channel, as mstsc sends it.
            ShareDataPdu::Synchronize(SynchronizePdu {
                target_user_id: capability_sets::SERVER_CHANNEL_ID,
            }),
        ),
        (
            "Control Cooperate",
            ShareDataPdu::Control(ControlPdu {
                action: ControlAction::Cooperate,
                grant_id: 0,
                control_id: 0,
            }),
        ),
        (
            "Control Request Control",
            ShareDataPdu::Control(ControlPdu {
                action: ControlAction::RequestControl,
                grant_id: 0,
                control_id: 0,
            }),
        ),
        (
            "Font List",
            ShareDataPdu::FontList(FontPdu {
                number: 0,
                total_number: 0,
                flags: SequenceFlags::FIRST | SequenceFlags::LAST,
                entry_size: FONT_LIST_ENTRY_SIZE,
            }),
        ),
    ];
    for (stage, pdu) in finalization {
        queue_io(
            framed,
            stage,
            SendDataDirection::Request,
            channels,
            &share_data(pdu),
        )?;
    }
    Ok(framed.flush("Font List").await?)
}

/// The desktop size the server settled on (its Bitmap capability set), else the one asked for.
fn desktop(demand: &DemandActive) -> (u16, u16) {
    demand
        .capability_sets
        .iter()
        .find_map(|set| match set {
            CapabilitySet::Bitmap(bitmap) => Some((bitmap.desktop_width, bitmap.desktop_height)),
            _ => None,
        })
        .unwrap_or(DESKTOP)
}

/// The capability sets a client must send (MS-RDPBCGR 2.2.1.13.2.1: General, Bitmap, Order,
/// Bitmap Cache, Pointer, Input, Brush, Glyph Cache, Offscreen Bitmap Cache, Virtual Channel,
/// Sound), with Multifragment Update: a client that draws nothing, so every cache is empty and
/// no order is supported.
fn capabilities((width, height): (u16, u16)) -> Vec<CapabilitySet> {
    use capability_sets::{
        Bitmap, BitmapCache, BitmapDrawingFlags, Brush, CacheDefinition, CacheEntry, General,
        GeneralExtraFlags, GlyphCache, GlyphSupportLevel, Input, InputFlags, MajorPlatformType,
        MultifragmentUpdate, OffscreenBitmapCache, Order, OrderFlags, OrderSupportExFlags, Pointer,
        Sound, SoundFlags, SupportLevel, VirtualChannel, VirtualChannelFlags,
        BITMAP_CACHE_ENTRIES_NUM, GLYPH_CACHE_NUM,
    };
    let no_cache = CacheDefinition {
        entries: 0,
        max_cell_size: 0,
    };
    vec![
        CapabilitySet::General(General {
            major_platform_type: MajorPlatformType::WINDOWS,
            extra_flags: GeneralExtraFlags::FASTPATH_OUTPUT_SUPPORTED
                | GeneralExtraFlags::NO_BITMAP_COMPRESSION_HDR,
            ..General::default()
        }),
        CapabilitySet::Bitmap(Bitmap {
            pref_bits_per_pix: 32,
            desktop_width: width,
            desktop_height: height,
            desktop_resize_flag: true,
            drawing_flags: BitmapDrawingFlags::ALLOW_SKIP_ALPHA,
        }),
        CapabilitySet::Order(Order::new(
            OrderFlags::NEGOTIATE_ORDER_SUPPORT | OrderFlags::ZERO_BOUNDS_DELTAS_SUPPORT,
            OrderSupportExFlags::empty(),
            0,
            0,
        )),
        CapabilitySet::BitmapCache(BitmapCache {
            caches: [CacheEntry {
                entries: 0,
                max_cell_size: 0,
            }; BITMAP_CACHE_ENTRIES_NUM],
        }),
        CapabilitySet::Pointer(Pointer {
            color_pointer_cache_size: 25,
            pointer_cache_size: 25,
        }),
        CapabilitySet::Input(Input {
            input_flags: InputFlags::SCANCODES | InputFlags::MOUSEX | InputFlags::UNICODE,
            keyboard_layout: 0,
            keyboard_type: None,
            keyboard_subtype: 0,
            keyboard_function_key: 0,
            keyboard_ime_filename: String::new(),
        }),
        CapabilitySet::Brush(Brush {
            support_level: SupportLevel::Default,
        }),
        CapabilitySet::GlyphCache(GlyphCache {
            glyph_cache: [no_cache; GLYPH_CACHE_NUM],
            frag_cache: no_cache,
            glyph_support_level: GlyphSupportLevel::None,
        }),
        CapabilitySet::OffscreenBitmapCache(OffscreenBitmapCache {
            is_supported: false,
            cache_size: 0,
            cache_entries: 0,
        }),
        CapabilitySet::VirtualChannel(VirtualChannel {
            flags: VirtualChannelFlags::NO_COMPRESSION,
            chunk_size: None,
        }),
        CapabilitySet::Sound(Sound {
            flags: SoundFlags::empty(),
        }),
        CapabilitySet::MultiFragmentUpdate(MultifragmentUpdate {
            max_request_size: 0x0026_0000,
        }),
    ]
}
