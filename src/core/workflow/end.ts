/** The reserved stage name that means "the workflow is finished". */
export const END = 'end';
