# irq_sim.c from linux-source-6.1, built as an out-of-tree module for the
# HIL VM (Debian's 6.1 has neither CONFIG_GPIO_SIM nor CONFIG_IRQ_SIM).
# irq_to_desc() is not exported to modules in 6.1; generic_handle_irq_safe()
# (exported) runs the same flow handler (handle_simple_irq, set by
# irq_sim_domain_map) with interrupts off, which is all the irq_work needs.
s/handle_simple_irq(irq_to_desc(irqnum));/generic_handle_irq_safe(irqnum);/
# A module needs a license to link against GPL-only symbols.
$a\
#include <linux/module.h>\
MODULE_LICENSE("GPL");\
MODULE_DESCRIPTION("interrupt simulator (out-of-tree build for make hil)");
