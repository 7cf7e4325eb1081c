/** The broker port an `mqtt://` URL without one means (IANA's for MQTT). */
export const MQTT_PORT = 1883;

/** The broker port an `mqtts://` URL without one means (MQTT over TLS). */
export const MQTT_TLS_PORT = 8883;
