import { DESIRED_LIMITS } from './commands.js';

/**
 * The largest MQTT packet (fixed header, topic, properties and payload) any
 * party of this protocol sends or accepts: 1 MiB. The largest legitimate
 * message is a desired-state envelope of DESIRED_LIMITS.maxBytes (256 KiB);
 * reports are plain JSON bounded by their schemas, well below it. The factor
 * of four is headroom for topic and properties and for a report grown near
 * its schema's bounds, so that no legitimate message ever meets this limit:
 * it exists to stop a packet of 100 MB before anyone buffers it.
 *
 * Both sides import it: the agent and the fleet clients announce it as their
 * MQTT 5 Maximum Packet Size, the embedded broker refuses larger packets,
 * and the Mosquitto guide sets `max_packet_size` to it.
 */
export const MAX_PACKET_BYTES = 4 * DESIRED_LIMITS.maxBytes;

/**
 * The smallest packet limit a broker of this protocol may set: the largest
 * legitimate message with room for its topic and properties. Below it,
 * desired states would be refused by the broker.
 */
export const MIN_PACKET_LIMIT_BYTES = DESIRED_LIMITS.maxBytes + 1024;
