// Package v4l2 records MJPEG video from a V4L2 camera (a USB webcam on the
// device): it negotiates a mode, dequeues frames, copies them out of the
// driver's buffers (cutting MJPEG at the EOI that ends the image, repairing
// MJPEG without Huffman tables, encoding YUYV to JPEG) and delivers them as
// mkv packets stamped with the driver's capture time (the kernel's
// CLOCK_MONOTONIC buffer timestamp) mapped onto the recorder's clock,
// strictly increasing. The camera is behind the Device interface; v4l2test
// has its fake.
//
// Only v4l2_linux.go talks to the kernel (through blackjack/webcam, and its
// own VIDIOC_DQBUF to keep the buffer timestamp webcam drops); other
// systems get a stub, so the package builds everywhere. It never writes to
// disk, never logs, and must never be imported by the laptop side.
package v4l2
