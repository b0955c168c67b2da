// The transport conformance suite, once per transport.
import { transportConformance } from './conformance.js';

transportConformance('memory');
transportConformance('tcp');
transportConformance('tcp', { connect: 'eager' });
